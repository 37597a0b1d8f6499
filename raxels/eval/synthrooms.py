"""Held-out SynthRooms evaluation of a pipeline: pose estimation (pairwise RRA/RTA/AUC, ATE) and generation along
ground-truth trajectories (PSNR/SSIM against the true renders). Held-out seeds never appear in training.

Controls tell whether the two streams are coupled at all: poses estimated from another clip's video
(`video_swapped_*`), videos generated along another clip's trajectory (`trajectory_swapped_PSNR`), and the first
frame held still (`first_frame_held_PSNR`, no model).

Diagnostics split the pose figures: per trajectory kind (`by_kind`: forward, pan, orbit, strafe), and
`AUC@30_true_centres`, the AUC@30 of the estimated rotations with the true camera centres put in, i.e. what the
model would score if its translations were exact."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from ..data.batches import HELD_OUT_SEED_START, synthrooms_batch
from ..data.synthrooms import TRAJECTORIES, SynthRoomsConfig
from ..tasks import Pipeline, estimate_trajectory, generate_video
from .pose import ate, pose_metrics
from .video import psnr, ssim


def evaluate_synthrooms(
    pipe: Pipeline,
    clips: int = 200,
    frames: int = 8,
    estimate_steps: int = 2,
    generate_clips: int = 50,
    generate_steps: int = 20,
    batch: int = 10,
    seed: int = 0,
) -> dict:
    cfg = SynthRoomsConfig(frames=frames, height=pipe.cfg.height, width=pipe.cfg.width)
    seeds = list(range(HELD_OUT_SEED_START + seed * 100_000, HELD_OUT_SEED_START + seed * 100_000 + clips))
    g = torch.Generator().manual_seed(seed)
    g_control = torch.Generator().manual_seed(seed + 1)  # its own noise: the main figures stay as without it
    pred, gt, ates, swapped, kinds = [], [], [], [], []
    psnrs, ssims, psnrs_swapped, psnrs_copy = [], [], [], []
    t_est = t_gen = 0.0
    for i in range(0, clips, batch):
        b = synthrooms_batch(seeds[i : i + batch], cfg)
        t0 = time.perf_counter()
        cams, _ = estimate_trajectory(pipe, b.frames, estimate_steps, g)
        t_est += time.perf_counter() - t0
        pred.append(cams.c2w.double())
        gt.append(b.cameras.c2w.double())
        kinds += b.kinds
        # The control: each clip's video replaced by another held-out clip's. A model that reads the video scores
        # far below its true-video figures here; one that predicts its prior trajectory scores the same.
        other, _ = estimate_trajectory(pipe, b.frames.roll(1, 0), estimate_steps, g_control)
        swapped.append(other.c2w.double())
        ates += [ate(cams.centres[k], b.cameras.centres[k]) for k in range(cams.c2w.shape[0])]
        if i < generate_clips:
            n = min(batch, generate_clips - i)
            t0 = time.perf_counter()
            video = generate_video(pipe, b.frames[:n, :1], b.cameras[slice(0, n)], generate_steps, g)
            t_gen += time.perf_counter() - t0
            # Controls: the same first frames generated along other clips' trajectories (a model that follows
            # its cameras loses PSNR there), and no model at all, the first frame held for the whole clip.
            others = b.cameras[torch.arange(n).roll(1)]
            video_swapped = generate_video(pipe, b.frames[:n, :1], others, generate_steps, g_control)
            for k in range(n):
                psnrs.append(psnr(video[k, 1:], b.frames[k, 1:]))
                ssims.append(ssim(video[k, 1:], b.frames[k, 1:]))
                psnrs_swapped.append(psnr(video_swapped[k, 1:], b.frames[k, 1:]))
                psnrs_copy.append(psnr(b.frames[k, :1].expand(frames - 1, -1, -1, -1), b.frames[k, 1:]))
    pred, gt = torch.cat(pred), torch.cat(gt)
    m = pose_metrics(pred, gt)
    with_true_centres = pred.clone()
    with_true_centres[..., :3, 3] = gt[..., :3, 3]
    m["AUC@30_true_centres"] = pose_metrics(with_true_centres, gt)["AUC@30"]
    control = pose_metrics(torch.cat(swapped), gt)
    m.update(
        {f"video_swapped_{k}": control[k] for k in ("RRA@15", "RTA@15", "AUC@30", "mean_rot_err_deg")},
    )
    m.update(
        {
            "clips": clips,
            "frames": frames,
            "estimate_steps": estimate_steps,
            "ATE": sum(ates) / len(ates),
            "estimate_s_per_clip": t_est / clips,
            "generate_clips": len(psnrs),
            "generate_steps": generate_steps,
            "PSNR": sum(psnrs) / max(1, len(psnrs)),
            "SSIM": sum(ssims) / max(1, len(ssims)),
            "trajectory_swapped_PSNR": sum(psnrs_swapped) / max(1, len(psnrs_swapped)),
            "first_frame_held_PSNR": sum(psnrs_copy) / max(1, len(psnrs_copy)),
            "generate_s_per_clip": t_gen / max(1, len(psnrs)),
            "by_kind": metrics_by_kind(pred, gt, kinds),
        }
    )
    return m


def metrics_by_kind(pred: Tensor, gt: Tensor, kinds: list[str]) -> dict[str, dict[str, float]]:
    """Pairwise pose metrics [N, F, 4, 4] each, split by the clips' trajectory kind."""
    out = {}
    for kind in TRAJECTORIES:
        idx = [i for i, k in enumerate(kinds) if k == kind]
        if idx:
            m = pose_metrics(pred[idx], gt[idx])
            out[kind] = {"clips": len(idx), **{k: m[k] for k in ("RRA@15", "RTA@15", "AUC@30", "mean_rot_err_deg")}}
    return out
