"""Flow matching with per-token timesteps, task masks, one Euler sampler, classifier-free guidance.

As Wan (rectified flow): x_t = (1 - t) x_0 + t eps, the model predicts v = eps - x_0, t = 0 is clean.
A task is only a mask saying which latent frames are given clean: the sampler and the loss never branch on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .aux_pose import pose_loss

TASKS = ("estimate", "generate", "joint", "unconditional")


@dataclass
class TaskMask:
    """True where a latent frame is noised (to be generated), False where it is given clean. [B, T] each."""

    video: Tensor
    raxel: Tensor


def task_mask(
    task: str,
    batch: int,
    video_frames: int,
    raxel_frames: int,
    cond_video: int = 1,
    cond_raxel: int | None = None,
    device=None,
) -> TaskMask:
    """The DESIGN table. cond_video: clean input video latent frames (generate/joint); cond_raxel: clean cameras
    for joint (default: the cameras of the frames those latents hold)."""
    v = torch.ones(batch, video_frames, dtype=torch.bool, device=device)
    r = torch.ones(batch, raxel_frames, dtype=torch.bool, device=device)
    if cond_raxel is None:
        # Latent 0 holds frame 0 alone, each later latent the codec's temporal factor of frames (Wan VAE: 4).
        factor = (raxel_frames - 1) // (video_frames - 1) if video_frames > 1 else 1
        cond_raxel = min(raxel_frames, 1 + (cond_video - 1) * factor)
    if task == "estimate":
        v[:] = False
    elif task == "generate":
        v[:, :cond_video] = False
        r[:] = False
    elif task == "joint":
        v[:, :cond_video] = False
        r[:, :cond_raxel] = False
    elif task != "unconditional":
        raise ValueError(f"unknown task {task!r}; choose from {TASKS}")
    return TaskMask(v, r)


def noised(x0: Tensor, eps: Tensor, t_frames: Tensor) -> Tensor:
    """x0, eps [B, C, T, h, w], t per latent frame [B, T] -> x_t."""
    t = t_frames[:, None, :, None, None].to(x0.dtype)
    return (1 - t) * x0 + t * eps


def sample_train_t(
    batch: int, generator: torch.Generator | None = None, device=None, top_share: float = 0.0
) -> Tensor:
    """A mixture: logit-normal (SD3 / Wan practice, weight on middle noise levels) 45%, uniform 35%, and
    U(0.9, 1) 20%. Few-step sampling (2-step pose estimation) starts at t = 1, which logit-normal alone almost
    never shows the model; measured: without the top band the t = 1 prediction was worse than the data mean.
    top_share > 0 then redraws that share of the levels from the top band (0 draws nothing more)."""

    def top_band() -> Tensor:  # one definition of the band for both draws
        return 0.9 + 0.1 * torch.rand(batch, generator=generator, device=device)

    logit_normal = torch.sigmoid(torch.randn(batch, generator=generator, device=device))
    uniform = torch.rand(batch, generator=generator, device=device)
    top = top_band()
    pick = torch.rand(batch, generator=generator, device=device)
    t = torch.where(pick < 0.45, logit_normal, torch.where(pick < 0.8, uniform, top))
    if top_share > 0:
        top = top_band()  # drawn before the pick, as the shipped second stage was trained
        t = torch.where(torch.rand(batch, generator=generator, device=device) < top_share, top, t)
    return t


def flow_matching_loss(
    model,
    video0: Tensor,
    raxel0: Tensor,
    mask: TaskMask,
    t_video: Tensor,
    t_raxel: Tensor,
    eps_video: Tensor,
    eps_raxel: Tensor,
    pose_target: Tensor | None = None,
    pose_weight: float = 0.0,
    pose_centre_weight: float = 1.0,
) -> tuple[Tensor, dict]:
    """MSE between predicted and true velocity, on noised latent frames only.

    t_video, t_raxel: [B] noise level of each sample's noised frames (clean frames get t = 0). pose_target [B, T, 9]
    (`aux_pose.pose_targets`) with pose_weight > 0 adds the auxiliary pose loss (a model built with pose_head), its
    centre entries weighted by pose_centre_weight."""
    tv = mask.video.to(video0.dtype) * t_video[:, None]
    tr = mask.raxel.to(raxel0.dtype) * t_raxel[:, None]
    aux = pose_target is not None and pose_weight > 0
    kw = {"return_pose": True} if aux else {}  # models without a pose head (test doubles too) never see the flag
    out = model(noised(video0, eps_video, tv), noised(raxel0, eps_raxel, tr), tv, tr, **kw)
    pv, pr = out[:2]
    mv = mask.video[:, None, :, None, None].expand_as(video0).to(torch.float32)
    mr = mask.raxel[:, None, :, None, None].expand_as(raxel0).to(torch.float32)
    se_v = ((pv.float() - (eps_video - video0).float()) ** 2 * mv).flatten(1).sum(1)
    se_r = ((pr.float() - (eps_raxel - raxel0).float()) ** 2 * mr).flatten(1).sum(1)
    n_v, n_r = mv.flatten(1).sum(1), mr.flatten(1).sum(1)
    # Per-sample means, then the batch mean: data-parallel shards average to exactly the global loss.
    loss = ((se_v + se_r) / (n_v + n_r).clamp_min(1)).mean()
    parts = {
        "loss_video": (se_v.sum() / n_v.sum().clamp_min(1)).item(),
        "loss_raxel": (se_r.sum() / n_r.sum().clamp_min(1)).item(),
    }
    if aux:
        clean_video = (~mask.video).float().mean(1)
        lp = pose_loss(out[2], pose_target, mask.raxel, t_raxel, clean_video, pose_centre_weight)
        loss = loss + pose_weight * lp
        parts["loss_pose"] = lp.item()
    return loss, parts


def timestep_schedule(steps: int, shift: float = 1.0, device=None) -> Tensor:
    """steps + 1 levels from 1 to 0; shift > 1 spends more steps at high noise (Wan uses 3-5 at high res)."""
    s = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64, device=device)
    return (shift * s / (1 + (shift - 1) * s)).float()


def noise_like(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Unit Gaussian noise of x's shape and dtype on x's device, drawn on the generator's device: a CPU generator
    then gives the same noise whatever device the model runs on (and a GPU run does not fail on it)."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=device).to(x.device)


@torch.no_grad()
def sample(
    model,
    video0: Tensor,
    raxel0: Tensor,
    mask: TaskMask,
    steps: int,
    shift: float = 1.0,
    generator: torch.Generator | None = None,
    guidance: float = 1.0,
    on_step=None,
) -> tuple[Tensor, Tensor]:
    """Euler sampling of the masked frames; frames outside the mask keep the given clean values throughout.

    video0/raxel0 hold the clean conditioning (values in masked frames are ignored). guidance > 1 applies
    classifier-free guidance against the prediction with every given frame hidden (replaced by noise, t = 1)."""
    mv = mask.video[:, None, :, None, None]
    mr = mask.raxel[:, None, :, None, None]
    xv = torch.where(mv, noise_like(video0, generator), video0)
    xr = torch.where(mr, noise_like(raxel0, generator), raxel0)
    if guidance != 1.0:
        uv, ur = noise_like(video0, generator), noise_like(raxel0, generator)
    levels = timestep_schedule(steps, shift).tolist()  # Python floats: no device sync per step
    for i in range(steps):
        t, t_next = levels[i], levels[i + 1]
        tv = mask.video.to(xv.dtype) * t
        tr = mask.raxel.to(xr.dtype) * t
        pv, pr = model(xv, xr, tv, tr)
        if guidance != 1.0:
            # Unconditional: given frames replaced by fixed noise at t = 1 (the unconditional task of training).
            gv = torch.where(mv, xv, uv)
            gr = torch.where(mr, xr, ur)
            qv, qr = model(
                gv,
                gr,
                torch.where(mask.video, tv, torch.ones_like(tv)),
                torch.where(mask.raxel, tr, torch.ones_like(tr)),
            )
            pv, pr = qv + guidance * (pv - qv), qr + guidance * (pr - qr)
        xv = torch.where(mv, xv + (t_next - t) * pv, xv)
        xr = torch.where(mr, xr + (t_next - t) * pr, xr)
        if on_step is not None:
            on_step(i + 1, steps)
    return xv, xr
