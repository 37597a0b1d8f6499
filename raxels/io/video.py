"""mp4 read/write (PyAV). Frames in raxels are float [F, 3, H, W] in [-1, 1]."""

from __future__ import annotations

import os
from collections.abc import Callable
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
# With `frame_fn`, results are kept in blocks of this many frames. One small kept tensor per frame, each carved out
# of the hole that the previous frame's freed full-size arrays left, made glibc's heap grow by 6-16 MB a 1080p frame
# at random (3-4 GB peak for 240 frames, in some runs only); in blocks the peak stayed at 0.5-0.6 GB in every run.
_CHUNK = 64


def read_video(
    path: str | os.PathLike, max_frames: int | None = None, frame_fn: Callable[[Tensor], Tensor] | None = None
) -> tuple[Tensor, float]:
    """Decode a video -> (frames [F, 3, H, W] float32 in [-1, 1], fps).

    `frame_fn` maps each decoded frame [3, H, W] as it arrives (e.g. a resize to the model's size), so a long
    high-resolution video never sits in memory at its own size: 240 frames of 1080p are 6 GB as float32. Its input
    is one buffer reused for every frame, and its results are copied into blocks of `_CHUNK` frames.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: video not found")
    frames, chunks, count, size, buf = [], [], 0, None, None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or 0) or DEFAULT_FPS
            for frame in container.decode(stream):
                arr = frame.to_ndarray(format="rgb24")
                if size is None:
                    size = arr.shape[:2]
                elif arr.shape[:2] != size:
                    raise InputError(
                        f"{path}: frame {count} is {arr.shape[1]}x{arr.shape[0]}, the first {size[1]}x{size[0]}"
                    )
                if frame_fn is None:
                    frames.append(arr)  # uint8 until the end: a quarter of the memory
                else:
                    # Channels innermost, the buffer and the blocks alike: the layout of the whole-video path, so
                    # frame_fn sees the same strides and the frames keep them (compiled training specialises on them).
                    if buf is None:
                        buf = torch.empty(arr.shape)
                    torch.div(torch.from_numpy(arr), 127.5, out=buf).sub_(1.0)
                    img = frame_fn(buf.permute(2, 0, 1)).permute(1, 2, 0)
                    if count % _CHUNK == 0:
                        chunks.append(torch.empty((_CHUNK, *img.shape), dtype=img.dtype))
                    chunks[-1][count % _CHUNK] = img  # a copy, also of a view of the buffer
                count += 1
                if max_frames and count >= max_frames:
                    break
    except InputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise InputError(f"{path}: cannot decode video ({e.__class__.__name__})") from None
    if not count:
        raise InputError(f"{path}: video has no decodable frames")
    if frame_fn is not None:
        return torch.cat(chunks)[:count].permute(0, 3, 1, 2), fps
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0, fps


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
