"""Writing a trajectory in every supported format at once (the CLI's camera outputs)."""

from __future__ import annotations

from pathlib import Path

from .cameras import Cameras
from .io import write_colmap_text, write_re10k, write_transforms
from .io.video import DEFAULT_FPS
from .report import plot_trajectories


def write_camera_outputs(
    folder: Path, cams: Cameras, reference: Cameras | None = None, title: str = "", fps: float = DEFAULT_FPS
) -> list[str]:
    """cameras.txt (RealEstate10K, timestamps of frames at `fps`: the video the cameras belong to),
    transforms.json (nerfstudio), colmap/ (COLMAP text), trajectory.png."""
    folder = Path(folder)
    write_re10k(folder / "cameras.txt", cams, fps=fps)
    write_transforms(folder / "transforms.json", cams)
    write_colmap_text(folder / "colmap", cams)
    trajs = {"estimated": cams} if reference is None else {"estimated": cams, "true": reference}
    plot_trajectories(folder / "trajectory.png", trajs, title)
    return ["cameras.txt", "transforms.json", "colmap/", "trajectory.png"]
