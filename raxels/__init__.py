"""raxels: Rays as Pixels."""

__version__ = "0.1.0"
