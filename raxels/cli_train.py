"""`raxels train` (TrainConfig's settings as command-line options) and `raxels export` (a training checkpoint as a
model folder); both registered on the app in cli.py."""

from __future__ import annotations

from pathlib import Path

import typer

from .errors import InputError


def train(
    config: str = typer.Option("tiny", help="Model size: tiny, wan-1.3b, wan-14b."),
    data: str = typer.Option("synthrooms", help="Training clips: synthrooms, re10k or dl3dv (both: --data-root)."),
    data_root: Path = typer.Option(None, help="re10k: a folder of mp4s with their camera txt; dl3dv: scene folders."),
    dl3dv_images: str = typer.Option(None, help="dl3dv: read a downsampled copy of the frames, e.g. images_4."),
    max_stride: int = typer.Option(None, help="Real clips: take every s-th frame, s drawn from 1..N."),
    codec: str = typer.Option(None, help="pixel (no weights), or wan-vae (the Wan VAE in --vae, frozen)."),
    vae: Path = typer.Option(None, help="Wan VAE folder (diffusers AutoencoderKLWan) for --codec wan-vae."),
    raxel_scale: float = typer.Option(None, help="Raxel images at this fraction of the frame size (paper: 0.5)."),
    camera_encoding: str = typer.Option("raxel", help="raxel, or plucker for the ablation."),
    preset: str = typer.Option("", help="Named settings, e.g. 'checkpoint' (the shipped model)."),
    steps: int = typer.Option(None, help="Optimisation steps."),
    batch_size: int = typer.Option(None, help="Global batch size."),
    frames: int = typer.Option(None, help="Frames per clip (replaces a preset's --frames-choices)."),
    frames_choices: str = typer.Option(None, help="Clip lengths, one drawn per step, e.g. 4,8,16."),
    height: int = typer.Option(None, help="Frame height."),
    width: int = typer.Option(None, help="Frame width."),
    lr: float = typer.Option(None, help="Peak learning rate."),
    log_every: int = typer.Option(None, help="Steps between log lines."),
    ckpt_every: int = typer.Option(None, help="Steps between checkpoints."),
    out: Path = typer.Option(None, help="Run folder (checkpoint, log, exported model)."),
    mixed_precision: str = typer.Option(None, help="fp32, bf16 (autocast; weights stay fp32) or auto."),
    gradient_checkpointing: bool = typer.Option(None, help="Recompute activations in the backward pass (less memory)."),
    compile: bool = typer.Option(None, help="torch.compile the model for training (faster steps after a warm-up)."),
    fsdp: bool = typer.Option(None, help="Shard weights, gradients, optimiser and EMA over the processes (FSDP)."),
    sharded_checkpoints: bool = typer.Option(None, help="Checkpoints as a folder each process writes its shard of."),
    loader_workers: int = typer.Option(None, help="Processes that prepare the next steps' batches (0: none)."),
    grad_accum: int = typer.Option(None, help="Each process's batch in N pieces, gradients summed (less memory)."),
    pose_loss_weight: float = typer.Option(None, help="Weight of the auxiliary pose loss (0: none)."),
    pose_centre_weight: float = typer.Option(None, help="Weight of the camera centres within that loss (1: equal)."),
    pure_noise_share: float = typer.Option(None, help="Share of samples whose raxels are pure noise (t = 1)."),
    task_probs: str = typer.Option(
        None, help="Weights of the tasks estimate, generate, joint and unconditional, e.g. 0.7,0.2,0.05,0.05."
    ),
    init_from: Path = typer.Option(
        None, help="Start from another run's checkpoint, file or folder (a second stage), or from a model folder."
    ),
    init_video_from: Path = typer.Option(None, help="Start the video stream from a Wan 2.1 transformer folder."),
    seed: int = typer.Option(None, help="Seed of every random choice (default: the preset's, else 0)."),
    resume: bool = typer.Option(False, help="Continue from OUT's latest checkpoint (file or folder)."),
) -> None:
    """Train RaxelsDiT (accelerate; on the GPU where there is one; run under `accelerate launch` or `torchrun` for
    several processes: DDP, or FSDP with --fsdp)."""
    from .train import train as run_train
    from .train_config import PRESETS, TrainConfig

    if preset and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
    values = dict(PRESETS.get(preset, {}))
    values.update(model=config, data=data, camera_encoding=camera_encoding)
    opts = dict(
        data_root=data_root,
        dl3dv_images=dl3dv_images,
        max_stride=max_stride,
        codec=codec,
        vae=vae,
        raxel_scale=raxel_scale,
        steps=steps,
        batch_size=batch_size,
        frames=frames,
        height=height,
        width=width,
        lr=lr,
        log_every=log_every,
        ckpt_every=ckpt_every,
        out=out,
        mixed_precision=mixed_precision,
        gradient_checkpointing=gradient_checkpointing,
        compile=compile,
        fsdp=fsdp,
        sharded_checkpoints=sharded_checkpoints,
        loader_workers=loader_workers,
        grad_accum=grad_accum,
        pose_loss_weight=pose_loss_weight,
        pose_centre_weight=pose_centre_weight,
        pure_noise_share=pure_noise_share,
        init_from=init_from,
        init_video_from=init_video_from,
        seed=seed,
    )
    for k, v in opts.items():
        if v is not None:
            values[k] = str(v) if isinstance(v, Path) else v
    if frames is not None and frames_choices is not None:
        raise InputError("give --frames or --frames-choices, not both")
    if frames is not None:
        values["frames_choices"] = ()  # `--preset checkpoint --frames 8` means 8 frames, not the preset's mix
    if frames_choices is not None:
        values["frames_choices"] = _numbers("frames-choices", frames_choices, int)
    if task_probs is not None:
        values["task_probs"] = _numbers("task-probs", task_probs, float)
    try:
        cfg = TrainConfig.from_dict(values)
        run_train(cfg, resume=resume)
    except ValueError as e:
        raise InputError(str(e)) from None


def _numbers(option: str, text: str, kind: type) -> tuple:
    try:
        return tuple(kind(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"--{option}: expected numbers separated by commas, got {text!r}") from None


def export(
    checkpoint: Path = typer.Argument(..., help="A checkpoint.safetensors, a checkpoint.dcp folder or a run folder."),
    out: Path = typer.Option(..., help="Model folder to write (config.json, weights, pipeline.json)."),
) -> None:
    """Export a training checkpoint's EMA weights as a model folder for the other commands, e.g. a run's latest
    checkpoint while it still trains."""
    from .io.atomic import check_output
    from .train import export_checkpoint
    from .train_checkpoints import latest_checkpoint

    check_output(out, folder=True)
    try:
        export_checkpoint(latest_checkpoint(checkpoint) or checkpoint, out)  # a run folder: its latest checkpoint
    except ValueError as e:
        raise InputError(str(e)) from None
