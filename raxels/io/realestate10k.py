"""RealEstate10K camera files.

Line 1: a URL. Then per frame: `timestamp_us fx fy cx cy 0 0 r11 r12 r13 t1 r21 r22 r23 t2 r31 r32 r33 t3`,
intrinsics normalised by the ORIGINAL frame (often 16:9), the 3x4 matrix world-to-camera OpenCV. A clip of W x H
was resized, then centre-cropped from that frame; the aspect a = fy/fx of the normalised focal lengths (square
pixels) tells which side was cropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..cameras import Cameras, intrinsics, invert_rigid, make_cameras
from ..errors import InputError
from .atomic import write_text_atomic


@dataclass
class Re10kTrajectory:
    cameras: Cameras  # B = 1
    timestamps: list[int]
    url: str


def read_re10k(path: str | os.PathLike, height: int, width: int) -> Re10kTrajectory:
    """Read a RealEstate10K txt for a clip of `width` x `height` pixels."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: camera file not found")
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read camera file ({e.__class__.__name__})") from None
    if len(lines) < 2:
        raise InputError(f"{path}: expected a URL line and at least one camera line")
    rows = []
    for i, ln in enumerate(lines[1:], start=2):
        parts = ln.split()
        if len(parts) != 19:
            raise InputError(f"{path}:{i}: expected 19 numbers per camera line, got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise InputError(f"{path}:{i}: camera line has a value that is not a number") from None
    a = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{path}:{int(np.nonzero(~np.isfinite(a).all(1))[0][0]) + 2}: NaN or inf in camera line")
    t = torch.from_numpy(a)
    fx_n, fy_n, cx_n, cy_n = t[:, 1], t[:, 2], t[:, 3], t[:, 4]
    if (fx_n <= 0).any() or (fy_n <= 0).any():
        raise InputError(f"{path}: focal lengths must be positive")
    K = normalised_to_pixel_intrinsics(fx_n, fy_n, cx_n, cy_n, height, width)
    w2c = torch.zeros(len(rows), 4, 4, dtype=torch.float64)
    w2c[:, :3, :] = t[:, 7:].reshape(-1, 3, 4)
    w2c[:, 3, 3] = 1.0
    try:
        cams = make_cameras(K, invert_rigid(w2c), height, width, name=str(path))
    except ValueError as e:
        raise InputError(str(e)) from None
    return Re10kTrajectory(cams, [int(v) for v in a[:, 0]], lines[0])


def normalised_to_pixel_intrinsics(fx_n, fy_n, cx_n, cy_n, height: int, width: int) -> torch.Tensor:
    """Normalised intrinsics of the original frame -> pixels of a W x H resize-then-centre-crop of it."""
    aspect = fy_n / fx_n  # original width / height, for square pixels
    crop_width = width / height < aspect
    # Size of the resized original frame before the centre crop.
    full_w = torch.where(crop_width, height * aspect, torch.full_like(aspect, float(width)))
    full_h = torch.where(crop_width, torch.full_like(aspect, float(height)), width / aspect)
    fx, fy = fx_n * full_w, fy_n * full_h
    cx = cx_n * full_w - (full_w - width) / 2
    cy = cy_n * full_h - (full_h - height) / 2
    return intrinsics(fx, fy, cx, cy)


def write_re10k(
    path: str | os.PathLike, cams: Cameras, timestamps: list[int] | None = None, url: str = "", fps: float = 30.0
) -> None:
    """Write batch element 0 of `cams`; intrinsics are normalised by the cameras' own frame (square pixels).
    Without `timestamps`, frame i is stamped i / fps seconds (in microseconds)."""
    F = cams.c2w.shape[1]
    ts = timestamps if timestamps is not None else [int(i * 1e6 / fps) for i in range(F)]
    if len(ts) != F:
        raise InputError(f"{path}: {len(ts)} timestamps for {F} cameras")
    K, w2c = cams.K[0].double(), invert_rigid(cams.c2w[0].double())
    out = [url or "https://example.invalid/raxels"]
    for i in range(F):
        vals = [K[i, 0, 0] / cams.width, K[i, 1, 1] / cams.height, K[i, 0, 2] / cams.width, K[i, 1, 2] / cams.height]
        nums = [f"{float(v):.12g}" for v in vals] + ["0", "0"] + [f"{float(v):.12g}" for v in w2c[i, :3, :].reshape(-1)]
        out.append(f"{ts[i]} " + " ".join(nums))
    write_text_atomic(path, "\n".join(out) + "\n")
