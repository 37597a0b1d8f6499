"""Pose estimation time per clip: ours (2 denoising steps, 32x32) vs pycolmap incremental SfM on the same clips
(SynthRooms rendered at 128x128 for COLMAP; real RealEstate10K clips at full size), as a ratio (goal >= 10x).
Prints JSON."""

import json
import time

import torch

from raxels.eval.harness import baseline_methods, model_method, re10k_clips, synthrooms_clips
from raxels.paths import DEFAULT_MODEL
from raxels.tasks import Pipeline


def main() -> None:
    pipe = Pipeline.from_pretrained(DEFAULT_MODEL)
    ours, colmap = model_method(pipe, 2), baseline_methods()["colmap"]
    clips = list(synthrooms_clips(3)) + list(re10k_clips())[:3]
    ours(clips[0])  # warm-up
    t_ours, t_colmap, colmap_fail = [], [], 0
    for c in clips:
        t0 = time.perf_counter()
        ours(c)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        colmap_fail += colmap(c) is None
        t_colmap.append(time.perf_counter() - t0)
    mo, mc = sum(t_ours) / len(t_ours), sum(t_colmap) / len(t_colmap)
    print(
        json.dumps(
            {
                "bench": "pose_time",
                "clips": len(clips),
                "frames": 16,
                "threads": torch.get_num_threads(),
                "ours_s_per_clip": round(mo, 3),
                "colmap_s_per_clip": round(mc, 3),
                "speedup": round(mc / mo, 2),
                "goal_speedup": 10,
                "met": mc / mo >= 10,
                "colmap_failures": colmap_fail,
            }
        )
    )


if __name__ == "__main__":
    main()
