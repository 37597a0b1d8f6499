"""Clips longer than the model's training clips. Pose estimation: the whole clip in one pass against interleaved
subsets of training length (`raxels/subsets.py`, what `estimate_trajectory` does by default). Generation along
true trajectories: the whole clip in one pass against consecutive windows (what `generate_video` does). Prints one
JSON line per setting (the README's "Long clips").

SynthRooms clips of F frames show the same motion as 16-frame ones, sampled more densely; the real ones are the
25-frame RealEstate10K clips in ../shared (384x256 at 8 fps). 2 denoising steps, the shipped model unless --model.

    .venv/bin/python experiments/long_clips.py [--clips 40] [--generation-clips 30] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from raxels.data.batches import HELD_OUT_SEED_START, synthrooms_batch
from raxels.data.clips import resize_clip
from raxels.data.realestate10k import load_re10k_clip, shared_clip_pairs
from raxels.data.synthrooms import SynthRoomsConfig
from raxels.eval.harness import baseline_methods
from raxels.eval.pose import pose_metrics
from raxels.eval.video import psnr
from raxels.paths import DEFAULT_MODEL
from raxels.tasks import Pipeline, estimate_trajectory, generate_video


def _estimates(pipe: Pipeline, batches, whole: bool) -> tuple[dict, float]:
    pred, gt, seconds = [], [], 0.0
    for frames, c2w in batches:
        t0 = time.perf_counter()
        window = frames.shape[1] if whole else None
        cams, _ = estimate_trajectory(pipe, frames, 2, torch.Generator().manual_seed(0), window=window)
        seconds += time.perf_counter() - t0
        pred.append(cams.c2w.double())
        gt.append(c2w.double())
    m = pose_metrics(torch.cat(pred), torch.cat(gt))
    return {k: round(m[k], 3) for k in ("RRA@15", "AUC@30", "mean_rot_err_deg")}, seconds / len(torch.cat(gt))


def _generation(pipe: Pipeline, frames: int, clips: int) -> None:
    """PSNR of frames 1.. against the truth, 20 steps, whole vs windows; holding the first frame for reference."""
    cfg = SynthRoomsConfig(frames=frames, height=pipe.cfg.height, width=pipe.cfg.width)
    seeds = list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + clips))
    scores: dict[str, list[float]] = {"whole clip": [], "windows": [], "first frame held": []}
    for i in range(0, clips, 10):
        b = synthrooms_batch(seeds[i : i + 10], cfg)
        for method in ("whole clip", "windows"):
            window = frames if method == "whole clip" else None
            g = torch.Generator().manual_seed(0)
            video = generate_video(pipe, b.frames[:, :1], b.cameras, 20, g, window=window)
            scores[method] += [psnr(v[1:], f[1:]) for v, f in zip(video, b.frames)]
        scores["first frame held"] += [psnr(f[:1].expand_as(f[1:]), f[1:]) for f in b.frames]
    for method, values in scores.items():
        row = {"clips": f"synthrooms-{frames}", "generation": method, "PSNR": round(sum(values) / len(values), 2)}
        print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=40, help="held-out SynthRooms clips per length")
    ap.add_argument("--generation-clips", type=int, default=30, help="held-out SynthRooms clips per length")
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    args = ap.parse_args()
    pipe = Pipeline.from_pretrained(args.model)
    H, W = pipe.cfg.height, pipe.cfg.width
    sets = {}
    for F in (16, 24, 32, 64) if args.clips > 0 else ():
        cfg = SynthRoomsConfig(frames=F, height=H, width=W)
        seeds = list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + args.clips))
        batches = [synthrooms_batch(seeds[i : i + 10], cfg) for i in range(0, len(seeds), 10)]
        sets[f"synthrooms-{F}"] = [(b.frames, b.cameras.c2w) for b in batches]
    real, full_size = [], []
    for vid, pose in shared_clip_pairs():
        clip = load_re10k_clip(vid, pose)
        if clip.frames.shape[0] > max(pipe.cfg.train_frames):
            frames, _ = resize_clip(clip.frames, clip.cameras, H, W)
            real.append((frames[None], clip.cameras.c2w.reshape(1, -1, 4, 4)))
            full_size.append(clip)
    if real:
        sets[f"realestate10k-{real[0][0].shape[1]}"] = real
    for name, batches in sets.items():
        for whole in (True, False):
            metrics, s_per_clip = _estimates(pipe, batches, whole)
            row = {"clips": name, "method": "whole clip" if whole else "subsets", **metrics}
            print(json.dumps({**row, "s_per_clip": round(s_per_clip, 3)}), flush=True)
        # The static camera: how much of RRA@15 slow turns give for nothing.
        gt = torch.cat([c2w.double() for _, c2w in batches])
        m = pose_metrics(torch.eye(4, dtype=torch.float64).expand_as(gt).clone(), gt)
        print(json.dumps({"clips": name, "method": "static camera", "RRA@15": round(m["RRA@15"], 3)}), flush=True)
    # COLMAP on the real clips at full size, a clip it fails on left out (counted).
    colmap = baseline_methods()["colmap"]
    posed = [(colmap(c), c) for c in full_size]
    ok = [(p, c.cameras.c2w.reshape(-1, 4, 4)) for p, c in posed if p is not None]
    if ok:
        m = pose_metrics(torch.stack([p.double() for p, _ in ok]), torch.stack([g.double() for _, g in ok]))
        row = {k: round(m[k], 3) for k in ("RRA@15", "AUC@30", "mean_rot_err_deg")}
        print(json.dumps({"clips": f"realestate10k-{real[0][0].shape[1]}", "method": "colmap", **row,
                          "failed": len(posed) - len(ok)}), flush=True)
    for frames in (16, 32, 64) if args.generation_clips > 0 else ():
        _generation(pipe, frames, args.generation_clips)


if __name__ == "__main__":
    main()
