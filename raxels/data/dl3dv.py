"""DL3DV scenes as clips: a folder in nerfstudio layout, `transforms.json` plus the frames it names.

DL3DV-10K ships each scene's `transforms.json` with its frames under `images/`, and the lower-resolution releases
as `images_2/`, `images_4/`, `images_8/` beside it while the file keeps the full-resolution size and intrinsics;
`image_dir` reads one of those copies and scales the intrinsics to the pixels actually read.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputError
from ..io.image import read_image
from ..io.nerfstudio import read_transforms
from .clips import VideoClip, resize_cameras, resize_frames


def load_dl3dv_clip(
    scene: str | os.PathLike,
    frames: int = 16,
    stride: int = 1,
    start: int = 0,
    image_dir: str = "",
    size: tuple[int, int] | None = None,
) -> VideoClip:
    """Frames start, start + stride, ... (at most `frames`) of a scene, in file-name order (DL3DV numbers them
    frame_00001.png, ...); `size` = (H, W) resizes frames and intrinsics together."""
    scene = Path(scene)
    if frames < 2 or stride < 1 or start < 0:
        raise InputError(f"{scene}: need frames >= 2, stride >= 1, start >= 0 (got {frames}, {stride}, {start})")
    cams, names = read_transforms(scene / "transforms.json")
    idx = sorted(range(len(names)), key=lambda i: names[i])[start::stride][:frames]
    if len(idx) < 2:
        raise InputError(f"{scene}: {len(names)} frames leave fewer than 2 from {start} in steps of {stride}")
    paths = [scene / (Path(image_dir) / Path(names[i]).name if image_dir else names[i]) for i in idx]
    images, (H, W) = [], (0, 0)
    for p in paths:
        img = read_image(p)
        if not images:
            H, W = img.shape[-2:]
        elif img.shape[-2:] != (H, W):
            raise InputError(f"{p}: {img.shape[-1]}x{img.shape[-2]} pixels, the first frame has {W}x{H}")
        # Resized one by one as read: 16 full-size DL3DV frames (3840x2160) are 1.6 GB as float32.
        images.append(resize_frames(img, *size) if size is not None else img)
    cams = cams.frames(torch.tensor(idx))
    if (H, W) != (cams.height, cams.width):
        # A downsampled copy: the same picture at a lower resolution, so the same aspect.
        if abs(W * cams.height - H * cams.width) > max(W, H):
            raise InputError(
                f"{paths[0]}: {W}x{H} pixels is not a resized copy of the {cams.width}x{cams.height} in transforms.json"
            )
        cams = cams.resized(H, W)
    clip = torch.stack(images)
    cams = cams.to(clip.dtype)
    if size is not None:
        cams = resize_cameras(cams, *size)
    return VideoClip(clip, cams, scene.name)


def dl3dv_scenes(root: str | os.PathLike) -> list[Path]:
    """The scene folders under `root` (each with a transforms.json), or `root` itself if it is one."""
    root = Path(root)
    if (root / "transforms.json").is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    scenes = sorted(p.parent for p in root.glob("*/transforms.json"))
    if not scenes:
        raise InputError(f"{root}: no scene folders with a transforms.json")
    return scenes
