"""A video clip with its cameras, and resizing that keeps frames and intrinsics in step."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as Fnn
from torch import Tensor

from ..cameras import Cameras, crop_intrinsics, scale_intrinsics


@dataclass
class VideoClip:
    frames: Tensor  # [F, 3, H, W] in [-1, 1]
    cameras: Cameras  # B = 1, F cameras for images of H x W
    name: str = ""


def resize_clip(frames: Tensor, cams: Cameras, height: int, width: int) -> tuple[Tensor, Cameras]:
    """Centre-crop to the target aspect, then resize (antialiased); intrinsics follow exactly."""
    H, W = frames.shape[-2:]
    if (H, W) != (cams.height, cams.width):
        raise ValueError(f"frames are {W}x{H} but cameras are for {cams.width}x{cams.height}")
    target = width / height
    if W / H > target:  # too wide: crop columns
        cw, ch = round(H * target), H
    else:
        cw, ch = W, round(W / target)
    left, top = (W - cw) // 2, (H - ch) // 2
    frames = frames[..., top : top + ch, left : left + cw]
    K = crop_intrinsics(cams.K, left, top)
    if (ch, cw) != (height, width):
        frames = Fnn.interpolate(frames, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        K = scale_intrinsics(K, width / cw, height / ch)
    return frames.clamp(-1, 1), Cameras(K, cams.c2w, height, width)
