"""Training loop (accelerate): one process on a CPU up to DDP/FSDP under `accelerate launch` or `torchrun`.

Every random choice of step s (clips, tasks, noise levels, noise) comes from a generator seeded by (seed, s) and
is drawn for the whole global batch on every rank; each rank then takes its slice (`train_steps`). So a resumed run
replays exactly, and N processes see the same global batch as one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import torch

from .aux_pose import pose_targets
from .codec import load_codec
from .data.batches import CAMERA_CHANNELS
from .data.sources import clip_source
from .device import resolve_precision
from .flow import flow_matching_loss
from .io.atomic import write_text_atomic
from .model import RaxelsDiT, build_model, model_config
from .model.wan_init import load_wan_video_stream
from .sharding import shard, whole_on_cpu
from .tasks import read_pipeline_config, write_pipeline_config
from .train_checkpoints import (
    checkpoint_meta,
    checkpoint_path,
    is_model_folder,
    latest_checkpoint,
    model_folder_config,
    read_ema,
    save_checkpoint,
    start_from,
)
from .train_config import TrainConfig
from .train_steps import latent_shapes, masks_for, step_batches


def build(cfg: TrainConfig, device: str | None = None):
    """The model (on `device`; "meta" builds its shapes only) and the codec."""
    channels = CAMERA_CHANNELS[cfg.camera_encoding]
    codec = load_codec(cfg.codec, cfg.camera_encoding, cfg.codec_factor, cfg.vae)
    mcfg = model_config(
        cfg.model,
        in_channels=codec.latent_channels(3),
        raxel_in_channels=codec.latent_channels(channels),
        camera_encoding=cfg.camera_encoding,
        **({"pose_head": True} if cfg.pose_loss_weight > 0 else {}),
        **_video_stream_kind(cfg),
        **cfg.model_overrides,
    )
    return build_model(mcfg, device), codec


_WAN_STREAM = ("video_position_embedding", "video_skip")


def _video_stream_kind(cfg: TrainConfig) -> dict:
    """A video stream that starts from Wan has neither absolute positions nor the skip (`wan_init`); a later stage
    (`init_from`) keeps whatever its first stage's model had."""
    if cfg.init_video_from:
        return dict.fromkeys(_WAN_STREAM, False)
    try:
        first = _first_stage(cfg, "model_config")
    except ValueError:
        return {}  # not a checkpoint: `start_from` says so before anything is written
    return {k: first[k] for k in _WAN_STREAM if k in first} if first else {}


def _first_stage(cfg: TrainConfig, key: str) -> dict | None:
    """One entry ("model_config", "train_config") of the `init_from` checkpoint; None without one, or for a model
    folder's train_config (it has none: `frames_seen` reads its pipeline.json)."""
    if not (cfg.init_from and Path(cfg.init_from).exists()):
        return None
    if is_model_folder(Path(cfg.init_from)):
        return model_folder_config(Path(cfg.init_from)) if key == "model_config" else None
    return checkpoint_meta(Path(cfg.init_from))[key]


def lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    prog = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))


def frames_seen(cfg: TrainConfig) -> tuple[int, ...]:
    """Clip lengths the model trained on: this run's and those of the runs it started from (`init_from`)."""
    seen = set(cfg.frames_choices or (cfg.frames,))
    first = _first_stage(cfg, "train_config")
    if first is not None:
        seen |= set(frames_seen(TrainConfig.from_dict(first)))
    elif cfg.init_from and is_model_folder(Path(cfg.init_from)):
        seen |= set(read_pipeline_config(cfg.init_from).train_frames)
    return tuple(sorted(seen))


def pipeline_config(cfg: TrainConfig):
    from .tasks import PipelineConfig

    return PipelineConfig(
        height=cfg.height,
        width=cfg.width,
        codec=cfg.codec,
        codec_factor=cfg.codec_factor,
        vae=str(Path(cfg.vae).resolve()) if cfg.vae else "",
        raxel_scale=cfg.raxel_scale,
        camera_encoding=cfg.camera_encoding,
        train_frames=frames_seen(cfg),
    )


def export_model(folder: Path, model_config: dict, ema: dict, cfg: TrainConfig) -> None:
    """The EMA weights (whole tensors) as a diffusers folder (config.json + safetensors + pipeline.json), all or
    nothing."""
    with torch.device("meta"):  # shapes only: the EMA's tensors become the weights (no second copy, no init)
        export = RaxelsDiT.from_config(model_config)
    export.load_state_dict(ema, assign=True)
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    export.save_pretrained(tmp, safe_serialization=True)
    write_pipeline_config(tmp, pipeline_config(cfg))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def export_checkpoint(ckpt: Path, folder: Path) -> None:
    """Export the EMA weights of a training checkpoint (file or folder) as a model folder."""
    meta = checkpoint_meta(Path(ckpt))
    cfg = TrainConfig.from_dict(meta["train_config"])
    export_model(folder, meta["model_config"], read_ema(Path(ckpt)), cfg)  # the model as trained, whatever built it


@contextlib.contextmanager
def _removed_if_no_step_ends(out: Path, created: bool, history: list):
    """A run that fails before its first step ends (a corrupt clip in the first batch, a device out of memory)
    removes the run folder it created: nothing in it could be resumed or read."""
    try:
        yield
    except BaseException:
        if created and not history:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _gradient_sync(accelerator, model, sharded: bool, sync: bool):
    """Where the backward pass reduces gradients across processes: only on a step's last piece."""
    if sharded:
        model.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()
    return contextlib.nullcontext() if sync else accelerator.no_sync(model)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    from accelerate import Accelerator

    cfg.check()
    torch.manual_seed(cfg.seed)  # model init
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    try:
        result = _train(cfg, accelerator, resume, progress)
        accelerator.wait_for_everyone()
        return result
    finally:
        # Left to the interpreter's exit, the process group's threads can abort a process now and then (SIGABRT: a
        # finished run exits 1 under torchrun, a bad input loses its one-line error). Local, so a process that fails
        # alone does not wait for the others here. A no-op in one process.
        accelerator.end_training()


def _train(cfg: TrainConfig, accelerator, resume: bool, progress: bool) -> dict:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        # Its wrapping would change what state_dict() returns under the EMA and the checkpoints.
        raise ValueError("accelerate's own FSDP settings are not used: launch without them and pass --fsdp")
    try:
        bf16 = resolve_precision(cfg.mixed_precision, accelerator.device) == "bf16"
    except ValueError as e:
        raise ValueError(f"mixed_precision: {e}") from None
    if bf16:
        # RMSNorm's fused kernel wants matching dtypes under autocast; the unfused path is correct, only slower.
        warnings.filterwarnings("ignore", message="Mismatch dtype between input and weight")
    sharded = cfg.fsdp and accelerator.num_processes > 1
    if cfg.fsdp and not sharded:
        print("raxels: --fsdp with one process: nothing to shard, training unsharded", file=sys.stderr, flush=True)
    # A sharded run holds the whole model in the first process's host memory only: the others build its shapes and
    # are sent their parts (`shard`).
    shapes_only = sharded and not accelerator.is_main_process
    model, codec = build(cfg, "meta" if shapes_only else None)
    if cfg.init_video_from and not shapes_only:
        load_wan_video_stream(model, cfg.init_video_from)
    if cfg.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    source = clip_source(
        cfg.data, cfg.frames_choices or (cfg.frames,), cfg.height, cfg.width, cfg.data_root, cfg.camera_encoding,
        cfg.raxel_scale, cfg.max_stride, cfg.dl3dv_images,
    )
    if sharded:
        shard(model, accelerator.device, bf16)  # before the optimiser and the EMA, which then hold shards too
    ema = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
    # The fused kernel: 12 ms a step against 47 for the per-tensor loop on the tiny model here. Not on FSDP's shards.
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, fused=not sharded)
    out = Path(cfg.out)
    ckpt = checkpoint_path(out, cfg.sharded_checkpoints)
    try:
        found = latest_checkpoint(out) if resume else None
    except ValueError as e:
        raise ValueError(f"resume: {e}") from None
    start = 0
    if found is not None:
        start = start_from(found, model, ema, opt, what="resume")
    elif cfg.init_from:
        start_from(Path(cfg.init_from), model, ema, opt)
    if not sharded:  # accelerate would wrap the sharded model in DDP as well
        model, opt = accelerator.prepare(model, opt)
    raw = accelerator.unwrap_model(model)
    if cfg.compile and sharded:
        print("raxels: --compile is not used with FSDP's shards: training uncompiled", file=sys.stderr, flush=True)
    elif cfg.compile:
        # Static shapes: a graph per clip length (a few), each faster than one graph with symbolic sizes. The EMA,
        # checkpoints and export read `raw`, whose names the compiled wrapper would prefix.
        model = torch.compile(model, dynamic=False)
    device = accelerator.device
    codec.to(device)
    ema = {k: v.to(device) for k, v in ema.items()}  # updated from the weights on their device every step

    n, rank = accelerator.num_processes, accelerator.process_index
    if cfg.batch_size % n:
        raise ValueError(f"global batch {cfg.batch_size} is not divisible by {n} processes")
    per = cfg.batch_size // n
    if per % cfg.grad_accum:
        raise ValueError(f"{per} clips per process do not split into grad_accum={cfg.grad_accum} equal parts")
    sl, micro = slice(rank * per, (rank + 1) * per), per // cfg.grad_accum
    log_path = out / "train_log.jsonl"
    created = accelerator.is_main_process and not out.exists()
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "train_config.json", json.dumps(asdict(cfg), indent=2))
    history = []
    t0 = time.perf_counter()
    model.train()
    shapes_of = {f: latent_shapes(cfg, codec, f) for f in cfg.frames_choices or (cfg.frames,)}
    with _removed_if_no_step_ends(out, created, history):
        for step, frames, draws, batch in step_batches(cfg, source, shapes_of, start, sl):
            shapes = shapes_of[frames]
            # Drawn on the CPU on every device alike, so all train on the same numbers; this process's part.
            d = {k: v[sl].to(device) if torch.is_tensor(v) else v[sl] for k, v in draws.items()}
            video0 = codec.encode_video(batch.frames.to(device))
            raxel0 = codec.encode_raxels(batch.camera_images.to(device))
            targets = pose_targets(batch.cameras.c2w).to(device) if cfg.pose_loss_weight > 0 else None
            for group in opt.param_groups:
                group["lr"] = lr_at(cfg, step)
            opt.zero_grad(set_to_none=True)
            # The part in grad_accum pieces, each one forward and backward: per-sample means make the mean of the
            # pieces' losses the part's loss, so the gradients add up to one pass's. Processes synchronise on the last
            # piece.
            loss, parts = 0.0, {}
            for j in range(cfg.grad_accum):
                piece = slice(j * micro, (j + 1) * micro)
                mask = masks_for(d["tasks"][piece], shapes[0][1], shapes[1][1], cfg.cond_frames, device)
                with _gradient_sync(accelerator, model, sharded, j == cfg.grad_accum - 1):
                    # Our own autocast, not Accelerator(mixed_precision=...): accelerate fixes that once per process.
                    with torch.autocast(accelerator.device.type, torch.bfloat16, enabled=bf16):
                        piece_loss, piece_parts = flow_matching_loss(
                            model,
                            video0[piece],
                            raxel0[piece],
                            mask,
                            d["t_video"][piece],
                            d["t_raxel"][piece],
                            d["eps_video"][piece],
                            d["eps_raxel"][piece],
                            targets[piece] if targets is not None else None,
                            cfg.pose_loss_weight,
                            cfg.pose_centre_weight,
                        )
                    accelerator.backward(piece_loss / cfg.grad_accum)
                loss += piece_loss.item() / cfg.grad_accum
                for k, v in piece_parts.items():  # the pooled parts are averaged over pieces, as over processes
                    parts[k] = parts.get(k, 0.0) + v / cfg.grad_accum
            if cfg.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                for k, v in raw.state_dict().items():
                    ema[k].mul_(decay).add_(v.detach().float(), alpha=1 - decay)  # shard by shard when sharded
            names = [k for k in ("loss_video", "loss_raxel", "loss_pose") if k in parts]
            stats = torch.tensor([loss] + [parts[k] for k in names], device=device)
            stats = accelerator.reduce(stats, reduction="mean").tolist()
            global_loss = stats[0]
            parts.update(zip(names, stats[1:]))
            history.append(global_loss)
            done = step + 1
            if accelerator.is_main_process and (done % cfg.log_every == 0 or done == cfg.steps):
                rec = {
                    "step": done,
                    "loss": global_loss,
                    **parts,
                    "lr": lr_at(cfg, step),
                    "elapsed_s": round(time.perf_counter() - t0, 2),
                }
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                if progress:
                    print(json.dumps(rec), flush=True)
            # A file from the first process, its tensors gathered from the others if sharded; a folder from all of them.
            if (done % cfg.ckpt_every == 0 or done == cfg.steps) and (
                sharded or cfg.sharded_checkpoints or accelerator.is_main_process
            ):
                save_checkpoint(ckpt, raw, ema, opt, done, asdict(cfg), main=accelerator.is_main_process)
            accelerator.wait_for_everyone()
    if sharded or accelerator.is_main_process:
        weights = whole_on_cpu(ema, keep=accelerator.is_main_process)
        if accelerator.is_main_process:
            export_model(out / "model", dict(raw.config), weights, cfg)
    return {"losses": history, "model": raw, "ema": ema}
