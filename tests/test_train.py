import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from raxels.train import CKPT_NAME, TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
WORKER = [sys.executable, str(ROOT / "tests" / "train_worker.py")]
SMALL = dict(dim=64, heads=2, ffn_dim=128, num_layers=2, ray_dim=64, ray_heads=2, ray_ffn_dim=128)


def _cfg(out, **kw):
    base = dict(
        steps=12,
        batch_size=2,
        frames=4,
        height=32,
        width=32,
        lr=1e-3,
        warmup=2,
        ckpt_every=3,
        log_every=1,
        out=str(out),
        model_overrides=SMALL,
    )
    base.update(kw)
    return TrainConfig(**base)


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return env


def test_resume_after_kill_is_bit_identical(tmp_path):
    full = _cfg(tmp_path / "full")
    subprocess.run(WORKER + [json.dumps(asdict(full))], check=True, env=_env(), cwd=ROOT)

    broken = _cfg(tmp_path / "broken", ckpt_every=2)
    proc = subprocess.Popen(WORKER + [json.dumps(asdict(broken))], env=_env(), cwd=ROOT)
    ckpt = tmp_path / "broken" / CKPT_NAME
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # a real kill, wherever the run is
    proc.wait()
    killed_at = json.loads(ckpt.parent.joinpath("train_log.jsonl").read_text().splitlines()[-1])["step"]
    assert killed_at < 12
    subprocess.run(WORKER + [json.dumps(asdict(broken)), "resume"], check=True, env=_env(), cwd=ROOT)

    a, b = load_file(tmp_path / "full" / CKPT_NAME), load_file(ckpt)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]  # no temporary files left


def _losses(folder):
    return {r["step"]: r["loss"] for r in map(json.loads, (folder / "train_log.jsonl").read_text().splitlines())}


def test_two_process_ddp_matches_one_process(tmp_path):
    one = _cfg(tmp_path / "one", steps=4, batch_size=4, ckpt_every=100)
    two = _cfg(tmp_path / "two", steps=4, batch_size=4, ckpt_every=100)
    subprocess.run(WORKER + [json.dumps(asdict(one))], check=True, env=_env(), cwd=ROOT)
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        str(ROOT / "tests" / "train_worker.py"),
        json.dumps(asdict(two)),
    ]
    subprocess.run(launcher, check=True, env=_env(), cwd=ROOT, capture_output=True)
    l1, l2 = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert l1.keys() == l2.keys() == {1, 2, 3, 4}
    for s in l1:
        assert abs(l1[s] - l2[s]) < 1e-4, (s, l1[s], l2[s])


def test_tiny_model_overfits_one_clip(tmp_path):
    t0 = time.time()
    cfg = TrainConfig(
        steps=400,
        batch_size=4,
        frames=4,
        height=32,
        width=32,
        lr=2e-3,
        warmup=20,
        clip_seeds=(7,),
        out=str(tmp_path),
        ckpt_every=10_000,
        log_every=400,
        task_probs=(0.25, 0.25, 0.25, 0.25),
    )
    losses = train(cfg, progress=False)["losses"]
    first, last = sum(losses[:5]) / 5, sum(losses[-20:]) / 20
    assert last < first / 10, (first, last)
    assert (tmp_path / "model" / "config.json").is_file()
    print(f"overfit: {first:.3f} -> {last:.4f} in {time.time() - t0:.0f} s")


def test_bad_training_settings(tmp_path):
    with pytest.raises(ValueError, match="unknown model config"):
        train(_cfg(tmp_path, model="huge"), progress=False)
