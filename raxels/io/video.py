"""mp4 read/write (PyAV). Frames in raxels are float [F, 3, H, W] in [-1, 1]."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from .atomic import atomic_path

# RealEstate10K clips and the CameraCtrl references are 8 fps; also the rate for videos that do not say theirs.
DEFAULT_FPS = 8.0


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> tuple[Tensor, float]:
    """Decode a video -> (frames [F, 3, H, W] float32 in [-1, 1], fps)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video not found")
    frames = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0) or DEFAULT_FPS
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames and len(frames) >= max_frames:
                    break
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"{path}: cannot decode video ({e.__class__.__name__})") from None
    if not frames:
        raise InputError(f"{path}: video has no decodable frames")
    arr = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()
    return arr / 127.5 - 1.0, fps


def to_uint8(frames: Tensor) -> np.ndarray:
    """[F, 3, H, W] in [-1, 1] -> [F, H, W, 3] uint8."""
    return (
        ((frames.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    )


def write_video(path: str | os.PathLike, frames: Tensor, fps: float = DEFAULT_FPS, quality_crf: int = 18) -> None:
    """Write [F, 3, H, W] frames in [-1, 1] as H.264 mp4 (even sizes are padded by the encoder's needs)."""
    arr = to_uint8(frames)
    F, H, W, _ = arr.shape
    # yuv420p needs even sizes: pad by edge replication rather than fail on odd sizes.
    ph, pw = H % 2, W % 2
    if ph or pw:
        arr = np.pad(arr, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            # A fraction keeps NTSC-style rates (30000/1001) instead of rounding them to whole frames per second.
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = arr.shape[2], arr.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(quality_crf)}
            for img in arr:
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def upscale_for_viewing(frames: Tensor, size: int = 128) -> Tensor:
    """Nearest-neighbour upscaling of [F, 3, H, W] so tiny clips are watchable in a browser or player."""
    s = max(1, size // frames.shape[-1])
    return torch.nn.functional.interpolate(frames, scale_factor=s, mode="nearest") if s > 1 else frames
