"""`make demo`: the shipped tiny model runs all three tasks and the self-consistency test on held-out SynthRooms
clips and on one real RealEstate10K clip (from ../shared, when present), and writes out/demo/report.html."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .cameras import Cameras, canonicalise
from .data.batches import HELD_OUT_SEED_START, camera_images, synthrooms_batch
from .data.clips import resize_clip
from .data.realestate10k import load_re10k_clip, shared_clip_pairs
from .data.synthrooms import SynthRoomsConfig
from .errors import InputError
from .eval.pose import ate, pose_metrics
from .eval.video import psnr, ssim
from .io import write_video
from .io.atomic import staged_dir
from .io.video import upscale_for_viewing
from .paths import DEFAULT_MODEL
from .report import plot_trajectories, raxel_strip, write_report
from .tasks import Pipeline, estimate_trajectory, generate_joint, generate_video, self_consistency


def _pose_row(name: str, est: Cameras, gt: Cameras) -> dict:
    m = pose_metrics(est.c2w.double(), gt.c2w.double())
    return {
        "clip": name,
        "task": "estimate (2 steps)",
        "RRA@15": m["RRA@15"],
        "RRA@30": m["RRA@30"],
        "AUC@30": m["AUC@30"],
        "ATE": ate(est.centres[0], gt.centres[0]),
        "mean rot err (deg)": m["mean_rot_err_deg"],
    }


def _clip_section(
    pipe: Pipeline, tmp: Path, name: str, frames: torch.Tensor, cams: Cameras | None, g: torch.Generator, gen_steps: int
) -> tuple[dict, list[dict]]:
    """All tasks on one clip; `cams` (canonical ground truth) may be None for a video without cameras."""
    items, rows = [], []
    t0 = time.perf_counter()
    est, raxels = estimate_trajectory(pipe, frames[None], 2, g)
    t_est = time.perf_counter() - t0
    write_video(tmp / f"{name}_input.mp4", upscale_for_viewing(frames))
    items.append({"kind": "video", "src": f"{name}_input.mp4", "caption": "input video", "width": 192})
    trajs = {"estimated": est}
    if cams is not None:
        trajs["true"] = cams
        row = _pose_row(name, est, cams)
        row["time (s)"] = t_est
        rows.append(row)
    plot_trajectories(tmp / f"{name}_trajectory.png", trajs, f"{name}: estimated vs true")
    items.append({"kind": "image", "src": f"{name}_trajectory.png", "caption": "3D trajectories", "width": 330})
    true_raxels = None  # at the size the model makes them, beside its estimates
    if cams is not None:
        true_raxels = camera_images(cams.to(torch.float64), pipe.cfg.camera_encoding, pipe.cfg.raxel_scale)[0].float()
    raxel_strip(tmp / f"{name}_raxels_est.png", raxels[0], reference=true_raxels)
    items.append({"kind": "image", "src": f"{name}_raxels_est.png", "caption": "estimated raxel images", "width": 512})
    if cams is not None:
        raxel_strip(tmp / f"{name}_raxels_true.png", true_raxels)
        items.append({"kind": "image", "src": f"{name}_raxels_true.png", "caption": "true raxel images", "width": 512})

        t0 = time.perf_counter()
        gen = generate_video(pipe, frames[None, :1], cams, gen_steps, g)[0]
        t_gen = time.perf_counter() - t0
        write_video(tmp / f"{name}_generated.mp4", upscale_for_viewing(torch.cat([frames, gen], dim=-1)))
        items.append(
            {
                "kind": "video",
                "src": f"{name}_generated.mp4",
                "width": 384,
                "caption": "generate along the true trajectory: true | generated",
            }
        )
        rows.append(
            {
                "clip": name,
                "task": f"generate ({gen_steps} steps)",
                "PSNR": psnr(gen[1:], frames[1:]),
                "SSIM": ssim(gen[1:], frames[1:]),
                "time (s)": t_gen,
            }
        )

        t0 = time.perf_counter()
        jv, jc, _ = generate_joint(pipe, frames[None, :1], frames.shape[0], gen_steps, cams.K[0, 0], g)
        t_joint = time.perf_counter() - t0
        write_video(tmp / f"{name}_joint.mp4", upscale_for_viewing(jv[0]))
        plot_trajectories(tmp / f"{name}_joint_trajectory.png", {"joint": jc}, f"{name}: jointly generated trajectory")
        items.append({"kind": "video", "src": f"{name}_joint.mp4", "caption": "joint: generated video", "width": 192})
        items.append(
            {"kind": "image", "src": f"{name}_joint_trajectory.png", "caption": "joint: its trajectory", "width": 330}
        )
        rows.append({"clip": name, "task": f"joint ({gen_steps} steps)", "time (s)": t_joint})

    t0 = time.perf_counter()
    sc = self_consistency(pipe, frames[None], 2, gen_steps, g, estimate=(est, raxels))  # reuses the estimate above
    t_sc = time.perf_counter() - t0
    write_video(
        tmp / f"{name}_consistency.mp4", upscale_for_viewing(torch.cat([frames, sc["video_regenerated"][0]], dim=-1))
    )
    items.append(
        {
            "kind": "video",
            "src": f"{name}_consistency.mp4",
            "width": 384,
            "caption": "self-consistency: V | V' regenerated along V's estimated poses",
        }
    )
    rows.append(
        {
            "clip": name,
            "task": "self-consistency",
            "PSNR": sc["metrics"]["psnr"],
            "SSIM": sc["metrics"]["ssim"],
            "mean rot err (deg)": sc["metrics"]["pose_mean_rot_err_deg"],
            "RRA@15": sc["metrics"]["pose_RRA@15"],
            "time (s)": t_sc,
        }
    )
    return {"title": name, "items": items, "metrics": rows}, rows


def run_demo(out: Path, model: Path = DEFAULT_MODEL, synth_clips: int = 2, gen_steps: int = 20) -> Path:
    t_start = time.perf_counter()
    pipe = Pipeline.from_pretrained(model)
    g = torch.Generator().manual_seed(0)
    H, W = pipe.cfg.height, pipe.cfg.width
    sections, summary = [], []
    with staged_dir(out) as tmp:
        batch = synthrooms_batch(
            [HELD_OUT_SEED_START + 1 + i for i in range(synth_clips)], SynthRoomsConfig(frames=16, height=H, width=W)
        )
        for i in range(synth_clips):
            sec, rows = _clip_section(pipe, tmp, f"synthrooms_{i}", batch.frames[i], batch.cameras[i], g, gen_steps)
            sections.append(sec)
            summary += rows
            print(f"demo: SynthRooms clip {i} done ({time.perf_counter() - t_start:.0f} s)", flush=True)
        pairs = [p for p in shared_clip_pairs() if p[0].parent.parent.name == "main"]
        if pairs:
            vid, pose = pairs[0]
            try:
                clip = load_re10k_clip(vid, pose)
                frames, cams = resize_clip(clip.frames, clip.cameras, H, W)
                canon, _ = canonicalise(cams.to(torch.float64))
                sec, rows = _clip_section(pipe, tmp, f"re10k_{vid.stem}", frames, canon, g, gen_steps)
                sec["text"] = (
                    f"Real RealEstate10K clip {vid.name} (from ../shared), centre-cropped and resized to {W}x{H}."
                )
                sections.append(sec)
                summary += rows
                print(f"demo: RealEstate10K clip done ({time.perf_counter() - t_start:.0f} s)", flush=True)
            except InputError as e:
                print(f"demo: skipping the RealEstate10K clip: {e}")
        else:
            print("demo: ../shared/data/realestate10k_cameractrl not found; SynthRooms only")
        (tmp / "metrics.json").write_text(json.dumps(summary, indent=2))
        intro = (
            f"Model: <code>{model.name}</code> ({sum(p.numel() for p in pipe.model.parameters()) / 1e6:.1f}M "
            f"parameters, {W}x{H} frames, {pipe.cfg.codec} codec). Trajectories are canonical: first camera = "
            f"identity, farthest camera centre at distance 1. Total demo time {time.perf_counter() - t_start:.0f} s."
        )
        write_report(tmp / "report.html", "raxels demo", intro, summary, sections)
    print(f"demo: wrote {out / 'report.html'} in {time.perf_counter() - t_start:.0f} s")
    return out / "report.html"
