import json
import subprocess
from dataclasses import asdict, replace

import pytest
import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import load_file

from raxels.train import export_checkpoint, train
from raxels.train_checkpoints import FILE_NAME, FOLDER_NAME, checkpoint_meta, read_ema
from tests.test_train import ROOT, WORKER, _assert_same_losses, _cfg, _env, _losses, _torchrun

MODEL_FILE = "diffusion_pytorch_model.safetensors"


@pytest.fixture
def one_thread():
    """Bit-exact comparisons between runs in one process: with two threads, reductions may add in another order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_checkpoint_folder_survives_a_crashed_save_and_resumes_bit_identically(tmp_path, monkeypatch, one_thread):
    """One process, checkpoints as folders: a save that dies half-way leaves the previous step's folder the current
    one and nothing else behind; resumed from it, the run ends on the numbers of an uninterrupted run (file
    checkpoints) bit for bit. Its folder starts a second stage and exports like the file."""
    train(_cfg(tmp_path / "full", steps=4, ckpt_every=2), progress=False)
    real_save, calls = dcp.save, []

    def dies_on_the_second_save(state, **kw):
        calls.append(kw["checkpoint_id"])
        real_save(state, **kw)
        if len(calls) == 2:
            raise OSError("disk full")  # after every shard is written, before the folder is complete

    monkeypatch.setattr(dcp, "save", dies_on_the_second_save)
    cfg = _cfg(tmp_path / "run", steps=4, ckpt_every=2, sharded_checkpoints=True)
    with pytest.raises(OSError, match="disk full"):
        train(cfg, progress=False)
    folder = tmp_path / "run" / FOLDER_NAME
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step-00000002"]
    assert max(_losses(tmp_path / "run")) == 4 and not (tmp_path / "run" / FILE_NAME).exists()

    monkeypatch.setattr(dcp, "save", real_save)
    (folder / ".partial").mkdir()  # as if a process had been killed in a save: ignored, then replaced
    train(cfg, resume=True, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step-00000004"]  # the older step is gone
    assert checkpoint_meta(folder)["step"] == 4
    assert _losses(tmp_path / "full") == _losses(tmp_path / "run")
    a, b = (load_file(tmp_path / run / "model" / MODEL_FILE) for run in ("full", "run"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    whole = load_file(tmp_path / "full" / FILE_NAME)
    ema = read_ema(folder)
    assert ema.keys() == {k[4:] for k in whole if k.startswith("ema.")}
    assert all(torch.equal(ema[k], whole[f"ema.{k}"]) for k in ema)
    export_checkpoint(folder, tmp_path / "again")
    again = load_file(tmp_path / "again" / MODEL_FILE)
    assert all(torch.equal(a[k], again[k]) for k in a)

    # A second stage at learning rate 0 keeps the folder's weights exactly.
    train(_cfg(tmp_path / "second", steps=1, lr=0.0, seed=1, ckpt_every=100, init_from=str(folder)), progress=False)
    second = load_file(tmp_path / "second" / FILE_NAME)
    assert all(torch.equal(second[k], whole[k]) for k in whole if k.startswith("model."))


def test_sharded_checkpoints_move_between_two_processes_and_one(tmp_path):
    """Two FSDP processes each write their own shard of the folder (nothing gathered, no file); one unsharded
    process resumes from it, and two sharded ones from what that one wrote. The run ends where a one-process run
    ends."""
    kw = dict(steps=6, batch_size=4, ckpt_every=2)
    one, two = _cfg(tmp_path / "one", **kw), _cfg(tmp_path / "two", fsdp=True, sharded_checkpoints=True, **kw)
    subprocess.run(WORKER + [json.dumps(asdict(one))], check=True, env=_env(), cwd=ROOT)
    _torchrun(two, env={"STOP_AFTER_CHECKPOINT": "2"})
    assert not (tmp_path / "two" / FILE_NAME).exists() and not (tmp_path / "two" / "model").exists()
    shards = sorted((tmp_path / "two" / FOLDER_NAME / "step-00000002").glob("*.distcp"))
    assert [p.name for p in shards] == ["__0_0.distcp", "__1_0.distcp"]
    sizes = [p.stat().st_size for p in shards]
    assert min(sizes) > 0.4 * sum(sizes), sizes  # each process wrote about half

    resume = WORKER + [json.dumps(asdict(two)), "resume"]
    subprocess.run(resume, check=True, env={**_env(), "STOP_AFTER_CHECKPOINT": "4"}, cwd=ROOT)
    assert checkpoint_meta(tmp_path / "two" / FOLDER_NAME)["step"] == 4
    _torchrun(two, "resume")
    _assert_same_losses(tmp_path / "one", tmp_path / "two", steps=6, tol=1e-4)
    whole = load_file(tmp_path / "one" / FILE_NAME)
    ema = read_ema(tmp_path / "two" / FOLDER_NAME)
    for k, v in ema.items():
        assert torch.allclose(v, whole[f"ema.{k}"], rtol=1e-3, atol=1e-6), k


def test_ddp_processes_write_one_checkpoint_folder_and_resume_from_it(tmp_path):
    """Unsharded processes (DDP) hold the same tensors: the folder gets them once, and both resume from it."""
    kw = dict(steps=4, batch_size=4, ckpt_every=2)
    one, two = _cfg(tmp_path / "one", **kw), _cfg(tmp_path / "two", sharded_checkpoints=True, **kw)
    subprocess.run(WORKER + [json.dumps(asdict(one))], check=True, env=_env(), cwd=ROOT)
    _torchrun(two, env={"STOP_AFTER_CHECKPOINT": "2"})
    step = tmp_path / "two" / FOLDER_NAME / "step-00000002"
    written = sum(p.stat().st_size for p in step.glob("*.distcp"))
    # Once, not one copy per process (2x); the folder stores each small tensor with some overhead (1.18x here).
    assert written < 1.5 * (tmp_path / "one" / FILE_NAME).stat().st_size
    _torchrun(two, "resume")
    _assert_same_losses(tmp_path / "one", tmp_path / "two", steps=4, tol=1e-4)


def test_a_model_folder_starts_two_fsdp_processes(tmp_path):
    """`make checkpoint`'s second stage starts from a model folder (`init_from`); under FSDP each process keeps its
    part of the folder's whole tensors. At learning rate 0 the weights gathered back are the folder's bit for bit,
    each process held about half of them, and the first loss is one process's from the same folder."""
    train(_cfg(tmp_path / "first", steps=2, ckpt_every=100), progress=False)
    folder = tmp_path / "first" / "model"
    kw = dict(steps=1, batch_size=4, lr=0.0, seed=1, ckpt_every=1, init_from=str(folder))
    one, two = _cfg(tmp_path / "one", **kw), _cfg(tmp_path / "two", fsdp=True, **kw)
    subprocess.run(WORKER + [json.dumps(asdict(one))], check=True, env=_env(), cwd=ROOT)
    _torchrun(two)
    weights = load_file(folder / MODEL_FILE)
    gathered = load_file(tmp_path / "two" / FILE_NAME)
    assert {k[6:] for k in gathered if k.startswith("model.")} == weights.keys()
    assert all(torch.equal(gathered[f"model.{k}"], v) for k, v in weights.items())
    held = [json.loads((tmp_path / "two" / f"held.{r}.json").read_text())["params"] for r in (0, 1)]
    assert min(held) > 0.4 * sum(held) and sum(held) == sum(v.numel() for v in weights.values()), held
    _assert_same_losses(tmp_path / "one", tmp_path / "two", steps=1, tol=1e-4)
    # A fresh start scores differently: the folder's weights are what the processes trained from.
    fresh = _cfg(tmp_path / "fresh", **{**kw, "init_from": ""})
    subprocess.run(WORKER + [json.dumps(asdict(fresh))], check=True, env=_env(), cwd=ROOT)
    assert abs(_losses(tmp_path / "fresh")[1] - _losses(tmp_path / "one")[1]) > 1e-3


def test_unusable_checkpoints_fail_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"^init_from: .*empty: not a checkpoint folder \(no latest file\)$"):
        train(_cfg(tmp_path / "bad", init_from=str(empty)), progress=False)
    assert not (tmp_path / "bad").exists()

    cfg = _cfg(tmp_path / "run", steps=2, ckpt_every=1, sharded_checkpoints=True)
    train(cfg, progress=False)
    folder = tmp_path / "run" / FOLDER_NAME
    (folder / "latest").write_text("step-00000009")  # names a folder that is not there
    with pytest.raises(ValueError, match=r"^resume: .*names 'step-00000009', which is not a complete step folder$"):
        train(cfg, resume=True, progress=False)

    corrupt = _cfg(tmp_path / "corrupt", steps=2)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / FILE_NAME).write_bytes(b"not safetensors" * 10)
    with pytest.raises(ValueError, match=r"^resume: .*checkpoint.safetensors: not a readable checkpoint \("):
        train(corrupt, resume=True, progress=False)

    # A folder that does not fit: tensors the model lacks (a pose head) are refused, not skipped.
    posed = _cfg(tmp_path / "posed", steps=1, ckpt_every=1, sharded_checkpoints=True, pose_loss_weight=0.5)
    train(posed, progress=False)
    posed_folder = tmp_path / "posed" / FOLDER_NAME
    with pytest.raises(ValueError, match=r"^init_from: .* does not fit this model \(unexpected \['model.pose_"):
        train(_cfg(tmp_path / "bad", init_from=str(posed_folder)), progress=False)
    # A cut-short shard: the load's own error, in one line (torch wraps it in a multi-line BaseException).
    shard = next((posed_folder / "step-00000001").glob("*.distcp"))
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"^init_from: .* is not a readable checkpoint \(EOFError\)$"):
        train(replace(posed, init_from=str(posed_folder), out=str(tmp_path / "bad")), progress=False)
    with pytest.raises(ValueError, match=r"^.*checkpoint.dcp: not a readable checkpoint \(EOFError\)$"):
        read_ema(posed_folder)
    assert not (tmp_path / "bad").exists()

    # Killed in its first save: no checkpoint yet, so --resume starts from the first step.
    first = _cfg(tmp_path / "first", steps=1, sharded_checkpoints=True)
    (tmp_path / "first" / FOLDER_NAME / ".partial").mkdir(parents=True)
    assert len(train(first, resume=True, progress=False)["losses"]) == 1
