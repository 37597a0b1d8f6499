"""COLMAP text models: cameras.txt (intrinsics) and images.txt (world-to-camera quaternion + translation)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..cameras import (
    Cameras,
    intrinsics,
    invert_rigid,
    make_cameras,
    matrix_to_quaternion,
    quaternion_to_matrix,
    rt_to_matrix,
)
from ..errors import InputError
from .atomic import write_text_atomic

# Models whose first parameters are focal(s) and principal point; distortion terms after them are dropped.
_FOCAL_PP = {"SIMPLE_PINHOLE": 1, "SIMPLE_RADIAL": 1, "RADIAL": 1, "PINHOLE": 2, "OPENCV": 2, "FULL_OPENCV": 2}


def _data_lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e.__class__.__name__})") from None
    return [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if not ln.startswith("#")]


def read_colmap_text(folder: str | os.PathLike) -> tuple[Cameras, list[str]]:
    """Read cameras.txt + images.txt from `folder` -> (Cameras with B=1 ordered by image name, names)."""
    folder = Path(folder)
    cams_path, imgs_path = folder / "cameras.txt", folder / "images.txt"
    cameras: dict[int, tuple[torch.Tensor, int, int]] = {}
    for n, ln in _data_lines(cams_path):
        if not ln.strip():
            continue
        p = ln.split()
        try:
            cid, model, w, h, params = int(p[0]), p[1], int(p[2]), int(p[3]), [float(v) for v in p[4:]]
        except (IndexError, ValueError):
            raise InputError(f"{cams_path}:{n}: malformed camera line") from None
        if model not in _FOCAL_PP:
            raise InputError(f"{cams_path}:{n}: unsupported camera model {model}")
        nf = _FOCAL_PP[model]
        if len(params) < nf + 2:
            raise InputError(f"{cams_path}:{n}: too few parameters for {model}")
        fx, fy = params[0], params[nf - 1]
        K = intrinsics(*(torch.tensor(v, dtype=torch.float64) for v in (fx, fy, params[nf], params[nf + 1])))
        cameras[cid] = (K, h, w)
    if not cameras:
        raise InputError(f"{cams_path}: no cameras")
    entries = []
    lines = _data_lines(imgs_path)
    # images.txt alternates a pose line and a 2D-points line (which may be empty).
    i = 0
    while i < len(lines):
        n, ln = lines[i]
        if not ln.strip():
            i += 1
            continue
        p = ln.split()
        try:
            q = torch.tensor([float(v) for v in p[1:5]], dtype=torch.float64)
            t = torch.tensor([float(v) for v in p[5:8]], dtype=torch.float64)
            cid, name = int(p[8]), " ".join(p[9:])
        except (IndexError, ValueError):
            raise InputError(f"{imgs_path}:{n}: malformed image line") from None
        if q.shape != (4,) or t.shape != (3,) or not name:
            raise InputError(f"{imgs_path}:{n}: malformed image line")
        if cid not in cameras:
            raise InputError(f"{imgs_path}:{n}: unknown camera id {cid}")
        if not (torch.isfinite(q).all() and torch.isfinite(t).all()) or q.norm() < 1e-9:
            raise InputError(f"{imgs_path}:{n}: NaN, inf or zero quaternion in image pose")
        entries.append((name, q, t, cid))
        i += 2
    if not entries:
        raise InputError(f"{imgs_path}: no images")
    entries.sort(key=lambda e: e[0])
    sizes = {cameras[e[3]][1:] for e in entries}
    if len(sizes) != 1:
        raise InputError(f"{cams_path}: images have different sizes {sorted(sizes)}; raxels needs one frame size")
    h, w = sizes.pop()
    K = torch.stack([cameras[e[3]][0] for e in entries])
    w2c = rt_to_matrix(quaternion_to_matrix(torch.stack([e[1] for e in entries])), torch.stack([e[2] for e in entries]))
    try:
        cams = make_cameras(K, invert_rigid(w2c), h, w, name=str(imgs_path))
    except ValueError as e:
        raise InputError(str(e)) from None
    return cams, [e[0] for e in entries]


def write_colmap_text(folder: str | os.PathLike, cams: Cameras, names: list[str] | None = None) -> None:
    """Write batch element 0 as a PINHOLE model, one camera per image (exact for varying intrinsics)."""
    folder = Path(folder)
    F = cams.c2w.shape[1]
    names = names or [f"frame_{i:05d}.png" for i in range(F)]
    K = cams.K[0].double()
    w2c = invert_rigid(cams.c2w[0].double())
    q = matrix_to_quaternion(w2c[:, :3, :3])
    cam_lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]"]
    img_lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
    ]
    for i in range(F):
        fx, fy, cx, cy = (float(K[i, a, b]) for a, b in ((0, 0), (1, 1), (0, 2), (1, 2)))
        cam_lines.append(f"{i + 1} PINHOLE {cams.width} {cams.height} {fx:.17g} {fy:.17g} {cx:.17g} {cy:.17g}")
        vals = [float(v) for v in q[i]] + [float(v) for v in w2c[i, :3, 3]]
        img_lines.append(f"{i + 1} " + " ".join(f"{v:.17g}" for v in vals) + f" {i + 1} {names[i]}")
        img_lines.append("")
    write_text_atomic(folder / "cameras.txt", "\n".join(cam_lines) + "\n")
    write_text_atomic(folder / "images.txt", "\n".join(img_lines) + "\n")
    write_text_atomic(folder / "points3D.txt", "# 3D point list (empty: poses only)\n")
