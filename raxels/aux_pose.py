"""The auxiliary pose objective: a training aid beside flow matching, not a second way to estimate cameras.

Why: in raxel (o + d) space the loss is mostly translation. Across SynthRooms clips a camera centre coordinate
varies with a spread of about 0.24 (canonical scale), a rotation-matrix entry with about 0.05, so the raxel loss
gives rotation about 1/25 of its weight, and the tiny model learnt to emit a prior trajectory rather than read the
rotation from the video (docs/experiments.md, "Probing the coupling"). Here each frame's pose is regressed from
the raxel stream's pooled features with both parts whitened to unit spread, weighted by how little the raxels
themselves tell (their noise level) and how much of the video is given clean: it asks the stream to read the video.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Spread across clips of one (frame, entry), measured on 100 SynthRooms clips of 4, 8 and 16 frames at 32x32:
# rotation entries 0.050, camera-centre coordinates 0.240 (canonical frame, farthest camera at distance 1).
ROTATION_SPREAD = 0.05
CENTRE_SPREAD = 0.24


def pose_targets(c2w: Tensor) -> Tensor:
    """Canonical camera-to-world [B, T, 4, 4] -> [B, T, 9]: the first two rotation columns (6D, their deviation
    from the identity's) and the centre, each divided by its spread across clips."""
    R = c2w[..., :3, :3]
    eye = torch.eye(3, dtype=c2w.dtype, device=c2w.device)[:, :2]
    rot = (R[..., :2] - eye).transpose(-1, -2).flatten(-2) / ROTATION_SPREAD
    return torch.cat([rot, c2w[..., :3, 3] / CENTRE_SPREAD], -1)


def pose_loss(
    pred: Tensor, target: Tensor, noised_raxel: Tensor, t_raxel: Tensor, clean_video: Tensor, centre_weight: float = 1.0
) -> Tensor:
    """Weighted MSE per frame, a mean per sample, then over the batch (so data-parallel shards average exactly).

    pred, target [B, T, 9]; noised_raxel [B, T] (the task mask's raxel part); t_raxel [B]; clean_video [B]: the
    fraction of the video given clean (1 in pose estimation, small in the joint task, 0 unconditional).
    centre_weight multiplies the three centre entries' squared errors (the six rotation entries keep weight 1)."""
    w = noised_raxel.to(pred.dtype) * (t_raxel * clean_video)[:, None].to(pred.dtype)
    entry = torch.ones(9, device=pred.device)
    entry[6:] = centre_weight
    se = ((pred.float() - target.float()) ** 2 * entry).mean(-1)
    return (w * se).mean(1).mean()
