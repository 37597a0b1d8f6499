"""nerfstudio / DL3DV `transforms.json`: OpenGL camera-to-world per frame, pixel intrinsics global or per frame."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

from ..cameras import Cameras, intrinsics, make_cameras, opencv_to_opengl_c2w, opengl_to_opencv_c2w
from ..errors import InputError
from .atomic import write_text_atomic

# The size first: cx and cy default to its half, so a bad size is reported as itself, not as a missing centre.
_INTRINSIC_KEYS = ("w", "h", "fl_x", "fl_y", "cx", "cy")


def _is_number(v: object) -> bool:
    # JSON numbers only: float() would also take strings such as "12" or "nan", and bool is an int in Python.
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def read_transforms(path: str | os.PathLike) -> tuple[Cameras, list[str]]:
    """Read transforms.json -> (Cameras with B=1, frame file paths). Frames keep the file's order."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: transforms file not found")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e.__class__.__name__})") from None
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list):
        raise InputError(f"{path}: no 'frames' list")
    if not frames:
        raise InputError(f"{path}: the 'frames' list is empty")
    Ks, c2ws, names, size = [], [], [], None
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict):
            raise InputError(f"{path}: frame {i} is not an object")
        vals = {}
        for k in _INTRINSIC_KEYS:
            v = fr.get(k, meta.get(k))
            if v is None and k == "fl_y":
                v = fr.get("fl_x", meta.get("fl_x"))
            if v is None and k in ("cx", "cy"):
                v = vals["w" if k == "cx" else "h"] / 2  # the size, read and checked before
            if v is None:
                raise InputError(f"{path}: frame {i} has no '{k}'")
            if not _is_number(v) or (k in ("w", "h") and (v != int(v) or v <= 0)):
                kind = "a positive whole number" if k in ("w", "h") else "a number"
                raise InputError(f"{path}: frame {i} '{k}' must be {kind}, got {v!r}"[:200])
            vals[k] = float(v)
        if size is None:
            size = (int(vals["h"]), int(vals["w"]))
        elif size != (int(vals["h"]), int(vals["w"])):
            raise InputError(f"{path}: frame {i} has size {int(vals['w'])}x{int(vals['h'])}, not {size[1]}x{size[0]}")
        try:
            m = torch.tensor(fr["transform_matrix"], dtype=torch.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: frame {i} has no valid 'transform_matrix'") from None
        if m.shape != (4, 4):
            raise InputError(f"{path}: frame {i} transform_matrix must be 4x4, got {list(m.shape)}")
        Ks.append(intrinsics(*(torch.tensor(vals[k], dtype=torch.float64) for k in ("fl_x", "fl_y", "cx", "cy"))))
        c2ws.append(opengl_to_opencv_c2w(m))
        names.append(str(fr.get("file_path", f"frame_{i:05d}.png")))
    try:
        cams = make_cameras(torch.stack(Ks), torch.stack(c2ws), size[0], size[1], name=str(path))
    except ValueError as e:
        raise InputError(str(e)) from None
    return cams, names


def write_transforms(path: str | os.PathLike, cams: Cameras, names: list[str] | None = None) -> None:
    """Write batch element 0, one intrinsics block per frame (exact for trajectories whose K changes)."""
    F = cams.c2w.shape[1]
    names = names or [f"images/frame_{i:05d}.png" for i in range(F)]
    c2w_gl = opencv_to_opengl_c2w(cams.c2w[0].double())
    K = cams.K[0].double()
    frames = [
        {
            "file_path": names[i],
            "fl_x": float(K[i, 0, 0]),
            "fl_y": float(K[i, 1, 1]),
            "cx": float(K[i, 0, 2]),
            "cy": float(K[i, 1, 2]),
            "w": cams.width,
            "h": cams.height,
            "transform_matrix": c2w_gl[i].tolist(),
        }
        for i in range(F)
    ]
    meta = {"camera_model": "OPENCV", "w": cams.width, "h": cams.height, "frames": frames}
    write_text_atomic(path, json.dumps(meta, indent=2))
