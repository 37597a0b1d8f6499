"""Attention on this CPU at the tiny model's sizes: forward + backward in bf16 (flash) against fp32, and the forward
alone, for 64, 128 and 256 tokens per stream (4, 8 and 16 frames at 32x32). Why training attends in fp32 and
inference in bf16 (`raxels.model.dit.attention`). Prints JSON.

Usage: python bench/attention_backward.py [--batch B] [--reps N]
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F


def median_ms(fn, reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(sorted(times)[len(times) // 2] * 1e3, 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    torch.manual_seed(0)
    heads, head_dim = 4, 64  # the tiny model's
    rows = []
    for tokens in (64, 128, 256):
        q, k, v = (torch.randn(args.batch, heads, tokens, head_dim, dtype=torch.bfloat16) for _ in range(3))
        grad = torch.randn_like(q)
        row = {"tokens": tokens}
        for name, cast in (("bf16", lambda x: x), ("fp32", torch.Tensor.float)):
            leaves = [x.clone().requires_grad_() for x in (q, k, v)]
            out_grad = cast(grad)  # outside the timed step: only the casts training does are timed

            def train_step():
                F.scaled_dot_product_attention(*(cast(x) for x in leaves)).backward(out_grad)

            def forward():
                with torch.no_grad():
                    F.scaled_dot_product_attention(*(cast(x) for x in (q, k, v)))

            row[f"fwd_bwd_ms_{name}"] = median_ms(train_step, args.reps)
            row[f"fwd_ms_{name}"] = median_ms(forward, args.reps)
        rows.append(row)
    print(
        json.dumps(
            {
                "bench": "attention_backward",
                "batch": args.batch,
                "heads": heads,
                "head_dim": head_dim,
                "threads": torch.get_num_threads(),
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    main()
