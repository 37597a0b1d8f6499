"""Pose metrics: pairwise relative rotation/translation accuracy (RRA, RTA), AUC@30 (the RayDiffusion/VGGT
protocol), and ATE after Sim(3) alignment. Pure functions of camera-to-world tensors."""

from __future__ import annotations

import torch
from torch import Tensor

from ..cameras import invert_rigid, relative_rotation_deg


def _pairs(F: int) -> tuple[Tensor, Tensor]:
    i, j = torch.triu_indices(F, F, offset=1)
    return i, j


def relative_pose_errors(c2w_pred: Tensor, c2w_gt: Tensor) -> tuple[Tensor, Tensor]:
    """[B, F, 4, 4] each -> (rotation error deg, translation direction error deg) over all pairs i < j, [B, P].

    Translation directions are compared up to sign (min(e, 180 - e)), as VGGT does, since a monocular
    trajectory's scale and hence the sign of a degenerate baseline are ambiguous."""
    i, j = _pairs(c2w_pred.shape[1])
    rel_p = invert_rigid(c2w_pred[:, i]) @ c2w_pred[:, j]
    rel_g = invert_rigid(c2w_gt[:, i]) @ c2w_gt[:, j]
    rot = relative_rotation_deg(rel_p[..., :3, :3].double(), rel_g[..., :3, :3].double())
    tp, tg = rel_p[..., :3, 3].double(), rel_g[..., :3, 3].double()
    cos = (tp * tg).sum(-1) / (tp.norm(dim=-1) * tg.norm(dim=-1)).clamp_min(1e-12)
    ang = torch.rad2deg(torch.acos(cos.clamp(-1, 1)))
    return rot, torch.minimum(ang, 180 - ang)


def pose_metrics(c2w_pred: Tensor, c2w_gt: Tensor) -> dict[str, float]:
    """RRA/RTA at 15 and 30 deg and AUC@30 (mean accuracy of max(rot, trans) error over 1..30 deg thresholds)."""
    return metrics_from_errors(*relative_pose_errors(c2w_pred, c2w_gt))


def metrics_from_errors(rot: Tensor, trans: Tensor) -> dict[str, float]:
    """The metrics of `pose_metrics` from pooled pairwise errors (clips of different lengths pool their pairs)."""
    rot, trans = rot.flatten(), trans.flatten()
    both = torch.maximum(rot, trans)
    thresholds = torch.arange(1, 31, dtype=both.dtype)
    auc = (both[None] < thresholds[:, None]).double().mean().item()
    return {
        "RRA@15": (rot < 15).double().mean().item(),
        "RRA@30": (rot < 30).double().mean().item(),
        "RTA@15": (trans < 15).double().mean().item(),
        "RTA@30": (trans < 30).double().mean().item(),
        "AUC@30": auc,
        "mean_rot_err_deg": rot.mean().item(),
        "pairs": int(rot.numel()),
    }


def umeyama_sim3(src: Tensor, dst: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Similarity (s, R, t) minimising |s R src + t - dst|^2 for point sets [N, 3]."""
    src, dst = src.double(), dst.double()
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / src.shape[0]
    U, S, Vh = torch.linalg.svd(cov)
    D = torch.eye(3, dtype=src.dtype)
    if torch.linalg.det(U @ Vh) < 0:
        D[2, 2] = -1
    R = U @ D @ Vh
    var = xs.square().sum() / src.shape[0]
    s = (S * D.diagonal()).sum() / var.clamp_min(1e-12)
    t = mu_d - s * R @ mu_s
    return s, R, t


def ate(centres_pred: Tensor, centres_gt: Tensor) -> float:
    """RMSE of camera centres [F, 3] after Sim(3) alignment of the prediction onto the ground truth."""
    s, R, t = umeyama_sim3(centres_pred, centres_gt)
    aligned = s * centres_pred.double() @ R.T + t
    return (aligned - centres_gt.double()).square().sum(-1).mean().sqrt().item()


def camera_control_errors(c2w_est: Tensor, c2w_req: Tensor) -> tuple[float, float]:
    """CameraCtrl's RotErr (sum over frames of the rotation angle, degrees) and TransErr (sum of centre distances)
    between a trajectory estimated from a generated video and the requested one, both expressed relative to their
    first camera and with the estimated centres scaled to the requested trajectory's extent. [F, 4, 4] each."""
    est = invert_rigid(c2w_est[:1].double()) @ c2w_est.double()
    req = invert_rigid(c2w_req[:1].double()) @ c2w_req.double()
    rot = relative_rotation_deg(est[:, :3, :3], req[:, :3, :3]).sum().item()
    ce, cr = est[:, :3, 3], req[:, :3, 3]
    scale = cr.norm(dim=-1).max() / ce.norm(dim=-1).max().clamp_min(1e-12)
    return rot, (ce * scale - cr).norm(dim=-1).sum().item()
