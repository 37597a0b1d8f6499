"""Training checkpoints (weights, EMA, AdamW state, step) in one of two formats, each written so that a crash never
leaves a half-written one behind:

- a file, `checkpoint.safetensors`, of whole tensors, written by the first process: what the tiny runs and the
  shipped checkpoint use. A sharded run gathers every tensor into the first process's memory for it.
- a folder, `checkpoint.dcp` (`TrainConfig.sharded_checkpoints`), written with torch.distributed.checkpoint: each
  process writes its own shard and nothing is gathered, which is what makes checkpoints of wan-14b practical (320 GB
  of state). Each save is a complete folder `step-NNNNNNNN` beside `latest`, which names the current one and is
  replaced by a rename only once the new folder is complete; then the older folders are deleted.

Either resumes on any number of processes, sharded or not, and either starts a second stage (`init_from`). So does
a model folder (`raxels export`, the shipped checkpoint): its weights, with a fresh optimiser.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file

from .errors import first_line
from .io.atomic import atomic_path, write_text_atomic
from .sharding import split_like, whole_on_cpu
from .tasks import PIPELINE_FILE

FILE_NAME = "checkpoint.safetensors"
FOLDER_NAME = "checkpoint.dcp"
_LATEST = "latest"  # in a checkpoint folder: the name of its current step folder
_META = "raxels.json"  # in a step folder: step, train_config, model_config
_PARTIAL = ".partial"  # in a checkpoint folder: the step folder being written
MODEL_WEIGHTS = "diffusion_pytorch_model.safetensors"  # a model folder's weights (diffusers' name)
# What reading a corrupt or cut-short checkpoint raises (safetensors' header, a shard's pickles, a JSON entry).
_UNREADABLE = (SafetensorError, OSError, EOFError, pickle.UnpicklingError, json.JSONDecodeError)


def checkpoint_path(out: Path, sharded: bool) -> Path:
    return Path(out) / (FOLDER_NAME if sharded else FILE_NAME)


def latest_checkpoint(out: Path) -> Path | None:
    """The run folder's checkpoint with the most steps, of either format; None if it has none (a checkpoint folder
    without `latest` holds at most the first save, cut short)."""
    file, folder = Path(out) / FILE_NAME, Path(out) / FOLDER_NAME
    found = ([file] if file.exists() else []) + ([folder] if (folder / _LATEST).exists() else [])
    return max(found, key=lambda p: checkpoint_meta(p)["step"], default=None)


def checkpoint_meta(path: Path) -> dict:
    """{"step": int, "train_config": dict, "model_config": dict} of a checkpoint file or folder; a one-line
    ValueError if it is neither."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no checkpoint file or folder at {path}")
    try:
        if path.is_dir():
            meta = json.loads((_step_folder(path) / _META).read_text())
        else:
            with safe_open(str(path), "pt") as f:
                stored = f.metadata() or {}
            meta = {k: json.loads(stored[k]) for k in ("step", "train_config", "model_config")}
        return {"step": int(meta["step"]), "train_config": meta["train_config"], "model_config": meta["model_config"]}
    except (*_UNREADABLE, TypeError) as e:
        raise ValueError(f"{path}: not a readable checkpoint ({first_line(e)})") from None
    except KeyError as e:
        raise ValueError(f"{path}: not a training checkpoint (no {e} in it)") from None


def _step_folder(path: Path) -> Path:
    """The step folder a checkpoint folder's `latest` names (or `path` itself, if it is one)."""
    if (path / _META).is_file():
        return path
    latest = path / _LATEST
    if not latest.is_file():
        raise ValueError(f"{path}: not a checkpoint folder (no {_LATEST} file)")
    folder = path / latest.read_text().strip()
    if not (folder / _META).is_file():
        raise ValueError(f"{path}: its {_LATEST} file names {folder.name!r}, which is not a complete step folder")
    return folder


def save_checkpoint(path: Path, model, ema: dict, opt, step: int, cfg_dict: dict, main: bool = True) -> None:
    """Write a checkpoint at `path` (the format follows its name). Under several processes every one calls this:
    the file gathers each tensor in turn and `main` writes it; the folder is written by all of them."""
    if Path(path).name == FOLDER_NAME:
        _save_folder(Path(path), model, ema, opt, step, cfg_dict, main)
    else:
        _save_file(Path(path), model, ema, opt, step, cfg_dict, main)


def restore(path: Path, model, ema: dict, opt) -> int:
    """Load a checkpoint file or folder into the model, EMA and optimiser, sharded or not; returns its step. No
    process reads more than one whole tensor at a time, and a sharded one keeps only its part."""
    path = Path(path)
    return _restore_folder(path, model, ema, opt) if path.is_dir() else _restore_file(path, model, ema, opt)


def is_model_folder(path: Path) -> bool:
    """A model folder (config.json, pipeline.json and the weights) rather than a training checkpoint."""
    return all((Path(path) / name).is_file() for name in ("config.json", PIPELINE_FILE, MODEL_WEIGHTS))


def model_folder_config(path: Path) -> dict:
    """A model folder's model config, without diffusers' bookkeeping entries; a one-line ValueError if unreadable."""
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable config.json ({first_line(e)})") from None
    return {k: v for k, v in config.items() if not k.startswith("_")}


def start_from(path: Path, model, ema: dict, opt, what: str = "init_from") -> int:
    """`restore`, with a one-line ValueError (led by `what`) if the checkpoint is missing, unreadable or does not fit
    the model. A model folder gives the weights and the EMA its weights, and leaves the optimiser fresh (step 0)."""
    weights_only = is_model_folder(path)
    if not weights_only:
        try:
            checkpoint_meta(path)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None
    try:
        if weights_only:
            return _restore_weights(Path(path) / MODEL_WEIGHTS, model, ema)
        return restore(path, model, ema, opt)
    except _UNREADABLE as e:
        unreadable = "has unreadable weights" if weights_only else "is not a readable checkpoint"
        raise ValueError(f"{what}: {path} {unreadable} ({first_line(e)})") from None
    except (RuntimeError, KeyError, ValueError) as e:
        raise ValueError(f"{what}: {path} does not fit this model ({first_line(e)})") from None


def read_ema(path: Path) -> dict:
    """The EMA weights of a checkpoint file or folder, whole tensors, in this one process; a one-line ValueError if
    they cannot be read."""
    import torch.distributed.checkpoint as dcp

    path = Path(path)
    try:
        if not path.is_dir():
            with safe_open(str(path), "pt") as f:
                return {k[4:]: f.get_tensor(k) for k in f.keys() if k.startswith("ema.")}
        folder = _step_folder(path)
        stored = _stored(folder)
        ema = {k[4:]: torch.empty(m.size, dtype=m.properties.dtype) for k, m in stored.items() if k.startswith("ema.")}
        with _one_process_is_meant(), _raised_as_themselves():
            dcp.load({"ema": ema}, checkpoint_id=str(folder), no_dist=True)
        return ema
    except (*_UNREADABLE, RuntimeError) as e:
        raise ValueError(f"{path}: not a readable checkpoint ({first_line(e)})") from None


def _check_names(names: set, model_state: dict, ema: dict) -> None:
    """ValueError unless the stored names ("model.*", "ema.*", ...) hold every tensor of the model and its EMA, and
    no weights the model lacks."""
    mine = {f"model.{k}" for k in model_state}
    missing = sorted(mine - names) + sorted({f"ema.{k}" for k in ema} - names)
    extra = sorted({k for k in names if k.startswith("model.")} - mine)
    if missing or extra:
        raise ValueError(", ".join(f"{what} {keys[:3]}" for what, keys in (("missing", missing), ("unexpected", extra))
                                   if keys))


# ---- the file: whole tensors ----


def _save_file(path: Path, model, ema: dict, opt, step: int, cfg_dict: dict, main: bool) -> None:
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.items()})
    sd = opt.state_dict()
    for idx in sorted(sd["state"]):  # the same order on every process: the gathers must pair up
        for k, v in sorted(sd["state"][idx].items()):
            tensors[f"opt.{idx}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
    tensors = whole_on_cpu(tensors, keep=main)
    if not main:
        return
    meta = {
        "step": str(step),
        "train_config": json.dumps(cfg_dict),
        "model_config": json.dumps(dict(model.config)),
        "param_groups": json.dumps(sd["param_groups"]),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _restore_file(path: Path, model, ema: dict, opt) -> int:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        names = set(f.keys())
        state = model.state_dict()
        _check_names(names, state, ema)
        _load_whole(f, model, state, ema, prefixes=("model.", "ema."))
        params = [p for group in opt.param_groups for p in group["params"]]
        opt_state: dict = {}
        for idx, name in sorted((int(i), n) for _, i, n in (k.split(".", 2) for k in names if k.startswith("opt."))):
            opt_state.setdefault(idx, {})[name] = split_like(f.get_tensor(f"opt.{idx}.{name}"), params[idx])
    opt.load_state_dict({"state": opt_state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["step"])


def _restore_weights(path: Path, model, ema: dict) -> int:
    """A model folder's weights (diffusers' names: the model's own) into the model and the EMA; step 0."""
    with safe_open(str(path), "pt") as f:
        state = model.state_dict()
        _check_names({f"model.{k}" for k in f.keys()} | {f"ema.{k}" for k in f.keys()}, state, ema)
        _load_whole(f, model, state, ema, prefixes=("", ""))
    return 0


def _load_whole(f, model, state: dict, ema: dict, prefixes: tuple[str, str]) -> None:
    """Whole tensors from an open safetensors file, named (model prefix + name, EMA prefix + name), into the model
    and the EMA; a sharded process keeps its part."""
    model.load_state_dict({k: split_like(f.get_tensor(prefixes[0] + k), v) for k, v in state.items()})
    for k in ema:
        ema[k].copy_(split_like(f.get_tensor(prefixes[1] + k), ema[k]))


# ---- the folder: torch.distributed.checkpoint, one shard per process ----


def _distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


@contextlib.contextmanager
def _one_process_is_meant():
    """torch.distributed.checkpoint warns on every save and load outside a process group; here that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*assuming the intent is to (save|load) in a single process")
        yield


@contextlib.contextmanager
def _raised_as_themselves():
    """torch.distributed.checkpoint wraps what failed in each process in a CheckpointException, a BaseException
    whose message is a traceback: raise the first process's own exception instead (a one-line error upstream)."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        yield
    except CheckpointException as e:
        failures = list(e.failures.values())
        if not failures:
            raise
        raise failures[0][0] from None


def _stored(folder: Path) -> dict:
    """{flattened name: its metadata} of a step folder's tensors."""
    import torch.distributed.checkpoint as dcp

    return dcp.FileSystemReader(str(folder)).read_metadata().state_dict_metadata


def _barrier() -> None:
    if _distributed():
        import torch.distributed as dist

        dist.barrier()


def _state(model, ema: dict, opt) -> dict:
    """What a checkpoint folder holds. The optimiser's state is keyed by parameter name (not position) and each
    tensor by its place in the whole one, so a folder written by N processes loads into M."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return {"model": model.state_dict(), "ema": ema, "optim": get_optimizer_state_dict(model, opt)}


def _save_folder(path: Path, model, ema: dict, opt, step: int, cfg_dict: dict, main: bool) -> None:
    import torch.distributed.checkpoint as dcp

    partial = path / _PARTIAL
    if main:
        shutil.rmtree(partial, ignore_errors=True)  # what a crashed save left
        partial.mkdir(parents=True)
    _barrier()
    try:
        with _one_process_is_meant():
            dcp.save(_state(model, ema, opt), checkpoint_id=str(partial), no_dist=not _distributed())
    except BaseException:
        if main:
            shutil.rmtree(partial, ignore_errors=True)
        raise
    _barrier()  # every shard is on disk
    if main:
        meta = {"step": step, "train_config": cfg_dict, "model_config": dict(model.config)}
        (partial / _META).write_text(json.dumps(meta))
        name, n = f"step-{step:08d}", 1
        while (path / name).exists():  # this step written before (a run restarted in the same folder): keep it until
            name, n = f"step-{step:08d}.{n}", n + 1  # `latest` names the new one
        os.replace(partial, path / name)
        write_text_atomic(path / _LATEST, name)
        for old in path.iterdir():
            if old.name.startswith("step-") and old.name != name:
                shutil.rmtree(old)
    _barrier()


def _restore_folder(path: Path, model, ema: dict, opt) -> int:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    folder = _step_folder(path)
    step = checkpoint_meta(folder)["step"]
    state = _state(model, ema, opt)
    _check_names(set(_stored(folder)), state["model"], ema)  # the load would skip tensors the model lacks
    with _one_process_is_meant(), _raised_as_themselves():
        dcp.load(state, checkpoint_id=str(folder), no_dist=not _distributed())  # in place, each process its part
    model.load_state_dict(state["model"])
    set_optimizer_state_dict(model, opt, state["optim"])
    return step
