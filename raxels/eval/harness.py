"""Side-by-side evaluation: every pose method on the same clips, dense (16 frames) and sparse (4 frames), on
SynthRooms (held-out seeds), the real RealEstate10K clips in ../shared and DL3DV scenes if given. Accuracy, wall
time per clip and how often a method returns no poses; plus generation metrics (PSNR, SSIM, FID, camera-control
error) for models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..cameras import Cameras, canonicalise
from ..data.batches import HELD_OUT_SEED_START
from ..data.clips import resize_clip
from ..data.dl3dv import dl3dv_scenes, load_dl3dv_clip
from ..data.realestate10k import load_re10k_clip, shared_clip_pairs
from ..data.synthrooms import SynthRoomsConfig, synth_clip
from ..tasks import Pipeline, estimate_trajectory, generate_video
from .baselines import colmap_poses, opencv_chain_poses, opencv_flow_poses
from .pose import ate, camera_control_errors, metrics_from_errors, relative_pose_errors
from .video import fid, psnr, ssim

BASELINE_SIZE = 128  # SynthRooms clips are rendered this large for the baselines (SIFT needs pixels)


@dataclass
class EvalClip:
    name: str
    frames: Tensor  # [F, 3, H, W], full resolution
    cameras: Cameras  # B = 1, ground truth


def _sparse(clip: EvalClip, n: int = 4) -> EvalClip:
    idx = torch.linspace(0, clip.frames.shape[0] - 1, n).round().long()
    return EvalClip(clip.name, clip.frames[idx], clip.cameras.frames(idx))


def synthrooms_clips(n: int, frames: int = 16) -> Iterator[EvalClip]:
    cfg = SynthRoomsConfig(frames=frames, height=BASELINE_SIZE, width=BASELINE_SIZE)
    for i in range(n):
        c = synth_clip(HELD_OUT_SEED_START + 50_000 + i, cfg)
        yield EvalClip(f"synthrooms_{i}", c.frames, c.cameras)


def re10k_clips(frames: int = 16) -> Iterator[EvalClip]:
    for vid, pose in shared_clip_pairs():
        c = load_re10k_clip(vid, pose)
        yield EvalClip(vid.stem, c.frames[:frames], c.cameras.frames(slice(0, frames)))


def dl3dv_clips(root, frames: int = 16, stride: int = 4, image_dir: str = "") -> Iterator[EvalClip]:
    """One clip per DL3DV scene under `root`: `frames` frames from its first, `stride` apart (DL3DV scenes are dense
    video; stride 4 spaces them roughly as the 8 fps RealEstate10K clips are)."""
    for scene in dl3dv_scenes(root):
        c = load_dl3dv_clip(scene, frames, stride, image_dir=image_dir)
        yield EvalClip(scene.name, c.frames, c.cameras)


def model_method(pipe: Pipeline, steps: int = 2) -> Callable[[EvalClip], Tensor | None]:
    def run(clip: EvalClip) -> Tensor | None:
        frames, _ = resize_clip(clip.frames, clip.cameras, pipe.cfg.height, pipe.cfg.width)
        cams, _ = estimate_trajectory(pipe, frames[None], steps, torch.Generator().manual_seed(0))
        c2w = cams.c2w[0].double()
        return c2w if torch.isfinite(c2w).all() else None

    return run


def static_camera(clip: EvalClip) -> Tensor:
    """The trivial reference: every frame keeps the first camera's pose. On footage that turns little it
    already scores a high RRA, so a method's RRA means something only above this row."""
    return torch.eye(4, dtype=torch.float64).expand(clip.frames.shape[0], 4, 4).clone()


def baseline_methods() -> dict[str, Callable[[EvalClip], Tensor | None]]:
    return {
        "static camera (reference)": static_camera,
        "colmap": lambda c: colmap_poses(c.frames, c.cameras.K[0, 0]),
        "opencv-essential": lambda c: opencv_chain_poses(c.frames, c.cameras.K[0, 0]),
        "opencv-flow": lambda c: opencv_flow_poses(c.frames, c.cameras.K[0, 0]),
    }


@dataclass
class Accumulator:
    rot: list = field(default_factory=list)
    trans: list = field(default_factory=list)
    ates: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    failures: int = 0

    def row(self) -> dict:
        n = len(self.seconds)
        out = {
            "clips": n,
            "failed": self.failures,
            "fail_rate": self.failures / max(1, n),
            "s_per_clip": sum(self.seconds) / max(1, n),
        }
        if self.rot:
            # Pairwise metrics pool all pairs of the clips a method posed.
            m = metrics_from_errors(torch.cat(self.rot), torch.cat(self.trans))
            out.update({k: m[k] for k in ("RRA@15", "RRA@30", "RTA@15", "RTA@30", "AUC@30")})
            out["ATE"] = sum(self.ates) / len(self.ates)
        return out


def evaluate_poses(methods: dict[str, Callable], datasets: dict[str, list[EvalClip]], progress=None) -> list[dict]:
    rows = []
    for dname, clips in datasets.items():
        for density, pick in (("dense", lambda c: c), ("sparse", _sparse)):
            for mname, fn in methods.items():
                acc = Accumulator()
                for clip in clips:
                    clip = pick(clip)
                    t0 = time.perf_counter()
                    try:
                        c2w = fn(clip)
                    except Exception:  # a baseline crashing on a clip counts as a failure, as in the literature
                        c2w = None
                    acc.seconds.append(time.perf_counter() - t0)
                    if c2w is None:
                        acc.failures += 1
                        continue
                    gt = canonicalise(clip.cameras.to(torch.float64))[0].c2w[0]
                    r, t = relative_pose_errors(c2w.double()[None], gt[None])
                    acc.rot.append(r.flatten())
                    acc.trans.append(t.flatten())
                    acc.ates.append(ate(c2w[:, :3, 3], gt[:, :3, 3]))
                row = {"dataset": dname, "frames": density, "method": mname, **acc.row()}
                rows.append(row)
                if progress:
                    progress(row)
    return rows


def _control_errors(video: Tensor, cams: Cameras) -> tuple[float, float] | None:
    """Camera-control error of a video [F, 3, h, w] against the trajectory it should follow, poses estimated by
    dense-flow essential-matrix chaining on the video upscaled 4x (an estimator independent of the model)."""
    up = F.interpolate(video, scale_factor=4, mode="bicubic").clamp(-1, 1)
    K = cams.K[0, 0].double() * torch.tensor([[4.0], [4.0], [1.0]], dtype=torch.float64)
    est = opencv_flow_poses(up, K)
    return None if est is None else camera_control_errors(est, cams.c2w[0].double())


def evaluate_generation(pipe: Pipeline, clips: list[EvalClip], steps: int = 20, frames: int = 8) -> dict:
    """Generate each clip from its first frame along its true trajectory (first `frames` frames): PSNR, SSIM,
    FID against the true frames, and camera-control error (RotErr, TransErr). The same estimator run on the
    true frames gives the *_true_video figures: the error floor of the estimator itself at this size."""
    gens, refs, psnrs, ssims = [], [], [], []
    errs: dict[str, list] = {"gen": [], "true": []}
    g = torch.Generator().manual_seed(0)
    for clip in clips:
        fr, cams = resize_clip(
            clip.frames[:frames], clip.cameras.frames(slice(0, frames)), pipe.cfg.height, pipe.cfg.width
        )
        video = generate_video(pipe, fr[None, :1], cams, steps, g)[0]
        gens.append(video[1:])
        refs.append(fr[1:])
        psnrs.append(psnr(video[1:], fr[1:]))
        ssims.append(ssim(video[1:], fr[1:]))
        errs["gen"].append(_control_errors(video, cams))
        errs["true"].append(_control_errors(fr, cams))

    def mean(vals: list, i: int) -> float | None:
        ok = [v[i] for v in vals if v is not None]
        return sum(ok) / len(ok) if ok else None  # None: posed none (not a perfect score)

    return {
        "clips": len(clips),
        "frames": frames,
        "steps": steps,
        "PSNR": sum(psnrs) / len(psnrs),
        "SSIM": sum(ssims) / len(ssims),
        "FID": fid(torch.cat(gens), torch.cat(refs)),
        "RotErr": mean(errs["gen"], 0),
        "TransErr": mean(errs["gen"], 1),
        "camera_control_failures": sum(e is None for e in errs["gen"]),
        "RotErr_true_video": mean(errs["true"], 0),
        "TransErr_true_video": mean(errs["true"], 1),
        "camera_control_failures_true_video": sum(e is None for e in errs["true"]),
    }
