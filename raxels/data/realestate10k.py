"""RealEstate10K clips: an mp4 and its camera txt, checked against each other."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..io.realestate10k import read_re10k
from ..io.video import read_video
from .clips import VideoClip, read_video_resized, resize_cameras

SHARED_RE10K = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realestate10k_cameractrl"


def load_re10k_clip(
    video: str | os.PathLike, poses: str | os.PathLike, size: tuple[int, int] | None = None
) -> VideoClip:
    """Load a clip; `size` = (H, W) resizes frames (as they decode) and intrinsics together."""
    if size is None:
        frames, _ = read_video(video)
        H, W = frames.shape[-2:]
    else:
        frames, (H, W), _ = read_video_resized(video, *size)
    traj = read_re10k(poses, H, W)
    n_cam = traj.cameras.c2w.shape[1]
    if n_cam != frames.shape[0]:
        raise InputError(f"{video}: {frames.shape[0]} frames but {poses} has {n_cam} cameras")
    cams = traj.cameras.to(frames.dtype)
    if size is not None:
        cams = resize_cameras(cams, *size)
    return VideoClip(frames, cams, Path(video).stem)


def shared_clip_pairs(root: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """(video, pose file) pairs of the shared RealEstate10K sample, [] if it is not there."""
    root = Path(root) if root else SHARED_RE10K
    return re10k_clip_pairs(root) if root.is_dir() else []


def re10k_clip_pairs(root: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(video, pose file) pairs under `root`, in path order: every mp4 whose camera txt has the same name, beside it
    or in a `pose_files` folder beside its own (CameraCtrl's `reference_videos/` + `pose_files/` layout)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    pairs = []
    for vid in sorted(root.rglob("*.mp4")):
        for pose in (vid.with_suffix(".txt"), vid.parent.parent / "pose_files" / (vid.stem + ".txt")):
            if pose.is_file():
                pairs.append((vid, pose))
                break
    return pairs
