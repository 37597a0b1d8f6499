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


def plucker_to_cameras(maps: Tensor) -> Cameras:
    """Plücker maps [B, F, 6, H, W] -> Cameras. The centre o solves o x d = m in least squares over all pixels;
    the rest goes through the raxel decoder on the equivalent raxel image (o + d) / 2."""
    from .raxels import RAXEL_SCALE, raxels_to_cameras

    d = maps[:, :, :3].permute(0, 1, 3, 4, 2)
    m = maps[:, :, 3:].permute(0, 1, 3, 4, 2)
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    z = torch.zeros_like(d[..., 0])
    # o x d = -[d]_x o, so  -[d]_x o = m.
    Dx = torch.stack([z, -d[..., 2], d[..., 1], d[..., 2], z, -d[..., 0], -d[..., 1], d[..., 0], z], -1)
    A = -Dx.reshape(*d.shape[:-1], 3, 3).flatten(2, 3)  # [B, F, P, 3, 3]
    AtA = (A.transpose(-1, -2) @ A).sum(2)
    Atm = (A.transpose(-1, -2) @ m.flatten(2, 3)[..., None]).sum(2)
    o = torch.linalg.solve(AtA, Atm)[..., 0]
    raxels = (o[:, :, None, None, :] + d) / RAXEL_SCALE
    return raxels_to_cameras(raxels.permute(0, 1, 4, 2, 3))
