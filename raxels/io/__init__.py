"""Readers and writers at the boundary: every format converts to `raxels.cameras.Cameras` here."""

from .colmap import read_colmap_text, write_colmap_text
from .nerfstudio import read_transforms, write_transforms
from .realestate10k import Re10kTrajectory, read_re10k, write_re10k
from .video import read_video, write_video

__all__ = [
    "Re10kTrajectory", "read_colmap_text", "read_re10k", "read_transforms", "read_video",
    "write_colmap_text", "write_re10k", "write_transforms", "write_video",
]
