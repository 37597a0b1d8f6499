"""Runs `raxels.train.train` on a JSON TrainConfig (argv[1]); argv[2] == 'resume' resumes. Used by test_train.

Test hooks: STOP_AFTER_CHECKPOINT=N ends every process right after the checkpoint of step N is written (a run cut
short at a known step, under torchrun too); each process writes the parameter elements it holds, and whether its
process group outlived `train`, to OUT/held.RANK.json; when `train` raises ValueError, it writes the message and the
same flag to OUT/failed.RANK.json and exits 2."""

import json
import os
import sys

import torch
from torch.distributed.tensor import DTensor

import raxels.train as train_module
from raxels.train_config import TrainConfig


def _stop_after(step: int):
    save = train_module.save_checkpoint

    def save_then_stop(path, model, ema, opt, done, cfg_dict, main=True):
        save(path, model, ema, opt, done, cfg_dict, main=main)
        if done == step:
            sys.exit(0)  # through `train`'s teardown of the process group, as any way out of it

    train_module.save_checkpoint = save_then_stop


def _held(tensors) -> int:
    """Elements this process holds: its own shard of a sharded tensor."""
    return sum((t.to_local() if isinstance(t, DTensor) else t).numel() for t in tensors)


if __name__ == "__main__":
    cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
    if "STOP_AFTER_CHECKPOINT" in os.environ:
        _stop_after(int(os.environ["STOP_AFTER_CHECKPOINT"]))
    rank = os.environ.get("RANK", "0")
    try:
        result = train_module.train(cfg, resume=len(sys.argv) > 2 and sys.argv[2] == "resume", progress=False)
    except ValueError as e:  # as the CLI's one-line error would, and whether the group outlived the failure
        os.makedirs(cfg.out, exist_ok=True)
        with open(os.path.join(cfg.out, f"failed.{rank}.json"), "w") as f:
            json.dump({"error": str(e), "group_left": torch.distributed.is_initialized()}, f)
        sys.exit(2)
    with open(os.path.join(cfg.out, f"held.{rank}.json"), "w") as f:
        held = {"params": _held(result["model"].parameters()), "ema": _held(result["ema"].values())}
        json.dump({**held, "group_left": torch.distributed.is_initialized()}, f)
