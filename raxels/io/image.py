"""Still images (png/jpg) as [3, H, W] float in [-1, 1]."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .atomic import atomic_path


def read_image(path: str | os.PathLike) -> Tensor:
    import imageio.v3 as iio

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image not found")
    try:
        arr = np.asarray(iio.imread(path))
    except Exception as e:  # imageio raises many types for unreadable files
        raise InputError(f"{path}: cannot read image ({e.__class__.__name__})") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, -1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4) or arr.dtype != np.uint8:
        raise InputError(f"{path}: expected an 8-bit RGB image, got shape {arr.shape} {arr.dtype}")
    return torch.from_numpy(arr[..., :3].copy()).permute(2, 0, 1).float() / 127.5 - 1


def write_image(path: str | os.PathLike, image: Tensor) -> None:
    """[3, H, W] in [-1, 1] -> png."""
    import imageio.v3 as iio

    arr = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, arr, extension=Path(path).suffix or ".png")
