"""Readers and writers at the boundary: every format converts to `raxels.cameras.Cameras` here."""

from .colmap import read_colmap_text, write_colmap_text
from .image import read_image, write_image
from .nerfstudio import read_transforms, write_transforms
from .realestate10k import Re10kTrajectory, read_re10k, write_re10k
from .video import read_video, write_video


def read_cameras(path, height: int | None = None, width: int | None = None):
    """Any supported camera file -> Cameras (B=1): .txt RealEstate10K (needs the image size), .json nerfstudio,
    a folder with cameras.txt + images.txt COLMAP text."""
    from pathlib import Path

    from ..errors import InputError

    path = Path(path)
    if path.is_dir():
        return read_colmap_text(path)[0]
    if path.suffix == ".json":
        return read_transforms(path)[0]
    if path.suffix == ".txt":
        if height is None or width is None:
            raise InputError(f"{path}: a RealEstate10K file needs the image size (--width/--height)")
        return read_re10k(path, height, width).cameras
    if not path.exists():
        raise InputError(f"{path}: camera file not found")
    raise InputError(f"{path}: unknown camera format (use .txt RealEstate10K, .json transforms, or a COLMAP folder)")


__all__ = [
    "read_cameras",
    "read_image",
    "write_image",
    "Re10kTrajectory",
    "read_colmap_text",
    "read_re10k",
    "read_transforms",
    "read_video",
    "write_colmap_text",
    "write_re10k",
    "write_transforms",
    "write_video",
]
