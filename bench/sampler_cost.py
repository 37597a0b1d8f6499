"""Sampler cost vs number of steps for the shipped tiny model (32x32, 16 frames): estimate and generate. Also
generation PSNR vs steps on 10 held-out 8-frame clips: PSNR rewards the blurry conditional mean that one or two
steps produce, so it rises as steps fall (a property of the metric, not better videos). JSON."""

import json
import time

import torch

from raxels.data.batches import HELD_OUT_SEED_START, synthrooms_batch
from raxels.data.synthrooms import SynthRoomsConfig
from raxels.paths import DEFAULT_MODEL
from raxels.eval.video import psnr
from raxels.tasks import Pipeline, estimate_trajectory, generate_video


def main() -> None:
    pipe = Pipeline.from_pretrained(DEFAULT_MODEL)
    b = synthrooms_batch(
        [HELD_OUT_SEED_START + 7], SynthRoomsConfig(frames=16, height=pipe.cfg.height, width=pipe.cfg.width)
    )
    q = synthrooms_batch(
        list(range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + 10)),
        SynthRoomsConfig(frames=8, height=pipe.cfg.height, width=pipe.cfg.width),
    )
    g = torch.Generator().manual_seed(0)
    estimate_trajectory(pipe, b.frames, 1, g)  # warm-up
    rows = []
    for steps in (1, 2, 5, 10, 20):
        t0 = time.perf_counter()
        estimate_trajectory(pipe, b.frames, steps, g)
        t_est = time.perf_counter() - t0
        t0 = time.perf_counter()
        generate_video(pipe, b.frames[:, :1], b.cameras, steps, g)
        t_gen = time.perf_counter() - t0
        video = generate_video(pipe, q.frames[:, :1], q.cameras, steps, torch.Generator().manual_seed(0))
        quality = sum(psnr(video[k, 1:], q.frames[k, 1:]) for k in range(10)) / 10
        rows.append(
            {
                "steps": steps,
                "estimate_s": round(t_est, 3),
                "generate_s": round(t_gen, 3),
                "generate_psnr_db_10_clips": round(quality, 2),
            }
        )
    print(
        json.dumps(
            {
                "bench": "sampler_cost",
                "frames": 16,
                "size": f"{pipe.cfg.width}x{pipe.cfg.height}",
                "threads": torch.get_num_threads(),
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
