"""`make demo`: runs the tasks on the embedded defaults and writes an HTML report."""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path) -> None:
    # The tasks, the trained checkpoint and the report come with the model and tasks issues.
    print("raxels demo: not built yet (the model and tasks are not in this version); nothing written.")
