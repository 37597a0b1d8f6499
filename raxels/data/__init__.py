"""Data sets: SynthRooms (the embedded default), RealEstate10K clips and DL3DV scenes."""
