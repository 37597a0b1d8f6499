"""Data sets: SynthRooms (the embedded default) and RealEstate10K clips."""
