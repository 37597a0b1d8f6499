"""SynthRooms render time: 16 frames at 64x64 on one core (goal < 0.5 s per clip). Prints JSON."""

import json
import time

import torch

from raxels.data.synthrooms import synth_clip

torch.set_num_threads(1)
synth_clip(0)  # warm-up: first-call allocations
times = []
for seed in range(1, 21):
    t0 = time.perf_counter()
    synth_clip(seed)
    times.append(time.perf_counter() - t0)
times.sort()
print(
    json.dumps(
        {
            "bench": "synthrooms_render",
            "frames": 16,
            "size": "64x64",
            "threads": 1,
            "median_s": round(times[len(times) // 2], 4),
            "max_s": round(times[-1], 4),
            "goal_s": 0.5,
            "met": times[-1] < 0.5,
        }
    )
)
