"""Host memory of two training processes on this CPU, DDP against FSDP (`--fsdp`, with checkpoint files or with
`--sharded-checkpoints`), for a model wide enough that its weights, gradients, AdamW moments and EMA dominate: each
process's peak resident memory (ru_maxrss), and the elements of weights it holds. Prints JSON, one line per mode.
Each run writes one checkpoint, at its last step, and exports its model.

What it shows is the split, not GPU figures: under FSDP the second process never holds the whole model (built on
the meta device, sent its half), while the first builds it whole before it is split; a checkpoint file gathers
every tensor into the first, a checkpoint folder nothing (the exported model still gathers the EMA there).

Usage: python bench/fsdp_memory.py [--dim D] [--layers L] [--steps N]
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(cfg_json: str) -> None:
    from torch.distributed.tensor import DTensor

    from raxels.train import train
    from raxels.train_config import TrainConfig

    cfg = TrainConfig.from_dict(json.loads(cfg_json))
    result = train(cfg, progress=False)
    held = sum((p.to_local() if isinstance(p, DTensor) else p).numel() for p in result["model"].parameters())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(cfg.out, f"rss.{os.environ['RANK']}.json").write_text(json.dumps({"peak_mb": peak_mb, "held": held}))


def main() -> None:
    from raxels.model import build_model, count_parameters, model_config
    from raxels.train_config import TrainConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    d = args.dim
    wide = dict(dim=d, heads=8, ffn_dim=4 * d, num_layers=args.layers, ray_dim=d, ray_heads=8, ray_ffn_dim=4 * d)
    params = count_parameters(build_model(model_config("tiny", **wide), "meta"))
    for mode in ("ddp", "fsdp", "fsdp-sharded-checkpoints"):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                steps=args.steps, batch_size=2, frames=4, height=32, width=32, ckpt_every=10**6, log_every=10**6,
                out=tmp, model_overrides=wide, fsdp=mode != "ddp", sharded_checkpoints=mode.endswith("checkpoints"),
            )
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port"]
            launcher += [str(port), __file__, "--worker", json.dumps(asdict(cfg))]
            env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
            subprocess.run(launcher, check=True, env=env, cwd=ROOT, capture_output=True)
            ranks = [json.loads(Path(tmp, f"rss.{r}.json").read_text()) for r in (0, 1)]
        print(json.dumps({
            "bench": "fsdp_memory",
            "mode": mode,
            "params": params,
            "fp32_state_mb": round(params * 20 / 2**20),  # weights, gradients, two moments, EMA
            "peak_rss_mb": [round(r["peak_mb"]) for r in ranks],
            "params_held": [r["held"] for r in ranks],
        }))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
