"""Plücker ray embedding (6 channels), the camera encoding that raxels are compared against in the ablation."""

from __future__ import annotations

import torch
from torch import Tensor

from .cameras import Cameras
from .raxels import ray_directions


def cameras_to_plucker(cams: Cameras, height: int | None = None, width: int | None = None) -> Tensor:
    """Cameras -> Plücker maps [B, F, 6, H, W]: (d, o x d) per pixel, d the unit world ray direction."""
    d = ray_directions(cams, height, width)
    o = cams.centres.to(d.dtype)[:, :, None, None, :].expand_as(d)
    return torch.cat([d, torch.cross(o, d, dim=-1)], dim=-1).permute(0, 1, 4, 2, 3).contiguous()
