"""A video clip with its cameras, and resizing that keeps frames and intrinsics in step."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch.nn.functional as Fnn
from torch import Tensor

from ..cameras import Cameras, crop_intrinsics, scale_intrinsics
from ..io.video import read_video


@dataclass
class VideoClip:
    frames: Tensor  # [F, 3, H, W] in [-1, 1]
    cameras: Cameras  # B = 1, F cameras for images of H x W
    name: str = ""


def centre_crop_box(H: int, W: int, height: int, width: int) -> tuple[int, int, int, int]:
    """(left, top, crop width, crop height) of the largest centred crop of W x H with the aspect of width x height."""
    target = width / height
    if W / H > target:  # too wide: crop columns
        cw, ch = round(H * target), H
    else:
        cw, ch = W, round(W / target)
    return (W - cw) // 2, (H - ch) // 2, cw, ch


def resize_frames(frames: Tensor, height: int, width: int) -> Tensor:
    """Frames [..., 3, H, W]: centre-crop to the target aspect, then resize (antialiased)."""
    H, W = frames.shape[-2:]
    left, top, cw, ch = centre_crop_box(H, W, height, width)
    frames = frames[..., top : top + ch, left : left + cw]
    if (ch, cw) != (height, width):
        lead = frames.shape[:-3]
        frames = Fnn.interpolate(
            frames.reshape(-1, *frames.shape[-3:]),
            size=(height, width),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        ).reshape(*lead, 3, height, width)
    return frames.clamp(-1, 1)


def read_video_resized(path: str | os.PathLike, height: int, width: int) -> tuple[Tensor, tuple[int, int], float]:
    """Decode a video with each frame put through `resize_frames` as it arrives -> (frames [F, 3, height, width],
    the video's own (H, W), fps): the same frames as resizing the whole video, without holding it at its own size."""
    size: list[int] = []

    def resize(frame: Tensor) -> Tensor:
        size[:] = frame.shape[-2:]
        return resize_frames(frame, height, width)

    frames, fps = read_video(path, frame_fn=resize)
    return frames, (size[0], size[1]), fps


def resize_cameras(cams: Cameras, height: int, width: int) -> Cameras:
    """The intrinsics that `resize_frames` implies."""
    left, top, cw, ch = centre_crop_box(cams.height, cams.width, height, width)
    K = scale_intrinsics(crop_intrinsics(cams.K, left, top), width / cw, height / ch)
    return Cameras(K, cams.c2w, height, width)


def unresize_cameras(cams: Cameras, H: int, W: int) -> Cameras:
    """Inverse of `resize_cameras`: cameras estimated on resized frames -> intrinsics of the original W x H."""
    left, top, cw, ch = centre_crop_box(H, W, cams.height, cams.width)
    K = crop_intrinsics(scale_intrinsics(cams.K, cw / cams.width, ch / cams.height), -left, -top)
    return Cameras(K, cams.c2w, H, W)


def resize_clip(frames: Tensor, cams: Cameras, height: int, width: int) -> tuple[Tensor, Cameras]:
    """Centre-crop to the target aspect, then resize; intrinsics follow exactly."""
    H, W = frames.shape[-2:]
    if (H, W) != (cams.height, cams.width):
        raise ValueError(f"frames are {W}x{H} but cameras are for {cams.width}x{cams.height}")
    return resize_frames(frames, height, width), resize_cameras(cams, height, width)
