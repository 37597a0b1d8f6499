"""Training batches: clips -> canonical cameras -> (frames, camera images) ready for the codec."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..cameras import Cameras, canonicalise
from ..plucker import cameras_to_plucker
from ..raxels import cameras_to_raxels
from .synthrooms import SynthRoomsConfig, synth_clip

HELD_OUT_SEED_START = 1_000_000  # evaluation clips use seeds from here on; training never does
CAMERA_CHANNELS = {"raxel": 3, "plucker": 6}


@dataclass
class Batch:
    frames: Tensor  # [B, F, 3, H, W] in [-1, 1]
    camera_images: Tensor  # [B, F, C, H, W]: raxels (C = 3) or Plücker maps (C = 6)
    cameras: Cameras  # canonical
    kinds: tuple[str, ...] = ()  # SynthRooms trajectory kind per clip (empty for other data)


def camera_image_size(height: int, width: int, scale: float = 1.0) -> tuple[int, int]:
    """(height, width) of the camera images for frames of height x width at `scale` (the one rounding rule)."""
    return round(height * scale), round(width * scale)


def camera_images(cams: Cameras, encoding: str = "raxel", scale: float = 1.0) -> Tensor:
    """Canonical cameras -> the camera images the model sees, at `scale` times the frame size."""
    H, W = camera_image_size(cams.height, cams.width, scale)
    if encoding == "raxel":
        return cameras_to_raxels(cams, H, W)
    if encoding == "plucker":
        return cameras_to_plucker(cams, H, W)
    raise ValueError(f"unknown camera encoding {encoding!r}")


def make_batch(frames: Tensor, cams: Cameras, encoding: str = "raxel", scale: float = 1.0) -> Batch:
    canon, _ = canonicalise(cams.to(torch.float64))
    images = camera_images(canon, encoding, scale).float()
    return Batch(frames.float(), images, canon.to(torch.float32))


def synthrooms_batch(seeds: list[int], cfg: SynthRoomsConfig, encoding: str = "raxel", scale: float = 1.0) -> Batch:
    clips = [synth_clip(int(s), cfg) for s in seeds]
    frames = torch.stack([c.frames for c in clips])
    cams = Cameras(
        torch.cat([c.cameras.K for c in clips]), torch.cat([c.cameras.c2w for c in clips]), cfg.height, cfg.width
    )
    batch = make_batch(frames, cams, encoding, scale)
    batch.kinds = tuple(c.kind for c in clips)
    return batch
