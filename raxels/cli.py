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


def main() -> None:
    try:
        app()  # standalone: click turns usage errors into a message and exit code 2
    except InputError as e:
        print(f"raxels: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
