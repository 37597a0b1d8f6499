"""The `raxels` command. Bad input ends with one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Rays as Pixels: videos and camera trajectories.")


@app.callback()
def _root() -> None:
    """Rays as Pixels: one diffusion model for videos and camera trajectories."""


@app.command()
def demo(out: Path = typer.Option(Path("out/demo"), help="Output folder.")) -> None:
    """Run all three tasks and the self-consistency test on the embedded defaults."""
    from .demo import run_demo

    run_demo(out)


@app.command()
def train(
    config: str = typer.Option("tiny", help="Model size: tiny, wan-1.3b, wan-14b."),
    data: str = typer.Option("synthrooms", help="Training data (synthrooms)."),
    camera_encoding: str = typer.Option("raxel", help="raxel, or plucker for the ablation."),
    preset: str = typer.Option("", help="Named settings, e.g. 'checkpoint' (the shipped model)."),
    steps: int = typer.Option(None, help="Optimisation steps."),
    batch_size: int = typer.Option(None, help="Global batch size."),
    frames: int = typer.Option(None, help="Frames per clip."),
    height: int = typer.Option(None, help="Frame height."),
    width: int = typer.Option(None, help="Frame width."),
    lr: float = typer.Option(None, help="Peak learning rate."),
    log_every: int = typer.Option(None, help="Steps between log lines."),
    ckpt_every: int = typer.Option(None, help="Steps between checkpoints."),
    out: Path = typer.Option(None, help="Run folder (checkpoint, log, exported model)."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    resume: bool = typer.Option(False, help="Continue from OUT/checkpoint.safetensors."),
) -> None:
    """Train RaxelsDiT (accelerate; run under `accelerate launch` or `torchrun` for several processes)."""
    from .train import PRESETS, TrainConfig, train as run_train

    if data != "synthrooms":
        raise InputError(f"unknown training data {data!r}; available: synthrooms")
    if preset and preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}")
    values = dict(PRESETS.get(preset, {}))
    values.update(model=config, data=data, camera_encoding=camera_encoding, seed=seed)
    opts = dict(steps=steps, batch_size=batch_size, frames=frames, height=height, width=width, lr=lr,
                log_every=log_every, ckpt_every=ckpt_every, out=out)
    for k, v in opts.items():
        if v is not None:
            values[k] = str(v) if k == "out" else v
    try:
        cfg = TrainConfig.from_dict(values)
        run_train(cfg, resume=resume)
    except ValueError as e:
        raise InputError(str(e)) from None


def main() -> None:
    try:
        app()  # standalone: click turns usage errors into a message and exit code 2
    except InputError as e:
        print(f"raxels: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
