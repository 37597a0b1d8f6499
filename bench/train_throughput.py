"""Training throughput of the tiny model: tokens/s, step time, peak memory, and achieved FLOP/s as a fraction of
this machine's measured fp32 matmul peak (goal >= 0.4). Prints JSON.

Usage: python bench/train_throughput.py [--steps N] [--frames F] [--size S] [--batch B]
"""

import argparse
import json
import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from raxels.flow import flow_matching_loss, task_mask
from raxels.train import build
from raxels.train_config import TrainConfig


def matmul_peak(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)  # fewer left its median noisy on a shared 2-core machine
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    cfg = TrainConfig(frames=args.frames, height=args.size, width=args.size, batch_size=args.batch)
    torch.manual_seed(0)
    model, codec = build(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)  # as `raxels.train` makes it
    s = codec.spatial_factor
    shape = (args.batch, codec.latent_channels(3), args.frames, args.size // s, args.size // s)
    v0, r0, ev, er = (torch.randn(shape) for _ in range(4))
    mask = task_mask("joint", args.batch, args.frames, args.frames)
    t = torch.rand(args.batch)

    def step():
        loss, _ = flow_matching_loss(model, v0, r0, mask, t, t, ev, er)
        opt.zero_grad()
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    step_s = sorted(times)[len(times) // 2]
    tokens = 2 * args.batch * args.frames * (args.size // s // 2) ** 2  # both streams
    peak = matmul_peak()
    achieved = flops / step_s
    print(
        json.dumps(
            {
                "bench": "train_throughput",
                "model": "tiny",
                "batch": args.batch,
                "frames": args.frames,
                "size": f"{args.size}x{args.size}",
                "threads": torch.get_num_threads(),
                "step_s": round(step_s, 4),
                "tokens_per_s": round(tokens / step_s, 1),
                "flop_per_step": flops,
                "achieved_flops": round(achieved / 1e9, 2),
                "unit": "GFLOP/s",
                "matmul_peak_gflops": round(peak / 1e9, 2),
                "fraction_of_peak": round(achieved / peak, 3),
                "goal_fraction": 0.4,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
