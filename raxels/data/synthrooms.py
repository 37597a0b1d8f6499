"""SynthRooms: procedural textured rooms with boxes, ray-cast along RealEstate10K-like trajectories.

Everything is exact and deterministic by seed: the cameras that made a clip are the ground truth. World frame:
y points down (as OpenCV cameras), the floor is at y = +floor_y below the eye, walls are axis-aligned.
Rendering casts one ray per sub-pixel through `raxels.raxels.ray_directions` (the same camera model the raxels
use), intersects the room's box from inside and the furniture boxes from outside, and shades a per-surface
procedural texture with a Lambert term.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fnn
from torch import Tensor

from ..cameras import Cameras, intrinsics, rt_to_matrix
from ..raxels import ray_directions

TRAJECTORIES = ("forward", "pan", "orbit", "strafe")


@dataclass(frozen=True)
class SynthRoomsConfig:
    frames: int = 16
    height: int = 64
    width: int = 64
    supersample: int = 2
    hfov_deg: tuple[float, float] = (60.0, 90.0)
    n_boxes: tuple[int, int] = (3, 6)


@dataclass
class Room:
    lo: Tensor  # [3] room box corner (min)
    hi: Tensor  # [3]
    box_lo: Tensor  # [N, 3] furniture boxes
    box_hi: Tensor  # [N, 3]
    tex: Tensor  # [6 + 6N, 9] per-surface texture parameters (see _shade)


def _rot(yaw: Tensor, pitch: Tensor, roll: Tensor) -> Tensor:
    """[F] angles (rad) -> [F,3,3] camera-to-world rotation: yaw about world y, pitch about x, roll about z."""
    cy, sy, cp, sp, cr, sr = yaw.cos(), yaw.sin(), pitch.cos(), pitch.sin(), roll.cos(), roll.sin()
    o, z = torch.ones_like(yaw), torch.zeros_like(yaw)
    Ry = torch.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).reshape(-1, 3, 3)
    Rx = torch.stack([o, z, z, z, cp, -sp, z, sp, cp], -1).reshape(-1, 3, 3)
    Rz = torch.stack([cr, -sr, z, sr, cr, z, z, z, o], -1).reshape(-1, 3, 3)
    return Ry @ Rx @ Rz


def make_room(rng: np.random.Generator, cfg: SynthRoomsConfig) -> Room:
    w, d, h = rng.uniform(4.0, 7.0), rng.uniform(5.0, 8.0), rng.uniform(2.5, 3.2)
    eye = rng.uniform(1.4, 1.7)  # camera height above the floor
    # The camera starts near the back wall (z = -1 relative to lo.z + 1.5), looking towards +z.
    lo = torch.tensor([-w / 2, eye - h, -1.5], dtype=torch.float64)
    hi = torch.tensor([w / 2, eye, d - 1.5], dtype=torch.float64)
    n = int(rng.integers(cfg.n_boxes[0], cfg.n_boxes[1] + 1))
    blo, bhi = [], []
    for _ in range(n):
        size = rng.uniform([0.4, 0.3, 0.4], [1.4, 1.8, 1.4])
        # Keep furniture out of the region the trajectories sweep (|x| < 1.8, z < 2.2 around the start).
        x = rng.uniform(-w / 2 + size[0] / 2, w / 2 - size[0] / 2)
        z = rng.uniform(2.4 + size[2] / 2, max(2.5 + size[2] / 2, d - 1.5 - size[2] / 2))
        on_wall_side = rng.random() < 0.5
        if on_wall_side:
            x = math.copysign(w / 2 - size[0] / 2, rng.uniform(-1, 1))
            z = rng.uniform(-1.5 + size[2] / 2, d - 1.5 - size[2] / 2)
            if abs(x) - size[0] / 2 < 1.9:
                continue
        y_bottom = eye
        blo.append([x - size[0] / 2, y_bottom - size[1], z - size[2] / 2])
        bhi.append([x + size[0] / 2, y_bottom, z + size[2] / 2])
    box_lo = torch.tensor(blo, dtype=torch.float64).reshape(-1, 3)
    box_hi = torch.tensor(bhi, dtype=torch.float64).reshape(-1, 3)
    n_surf = 6 + 6 * box_lo.shape[0]
    # Per surface: rgb base, rgb accent, two spatial frequencies, checker size.
    base = rng.uniform(0.15, 0.9, (n_surf, 3))
    accent = rng.uniform(0.05, 0.95, (n_surf, 3))
    freq = rng.uniform(0.8, 4.0, (n_surf, 2))
    checker = rng.uniform(0.25, 0.9, (n_surf, 1))
    tex = torch.tensor(np.concatenate([base, accent, freq, checker], 1), dtype=torch.float64)
    return Room(lo, hi, box_lo, box_hi, tex)


def make_trajectory(rng: np.random.Generator, cfg: SynthRoomsConfig, kind: str) -> tuple[Tensor, Tensor]:
    """-> (c2w [F,4,4], K [F,3,3]) for one of TRAJECTORIES, starting near the origin looking along +z."""
    F = cfg.frames
    s = torch.linspace(0, 1, F, dtype=torch.float64)
    ease = 0.5 - 0.5 * torch.cos(math.pi * s)  # starts and stops smoothly, as a person filming would
    yaw0 = rng.uniform(-0.4, 0.4)
    pitch0 = rng.uniform(-0.12, 0.12)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    centre = torch.zeros(F, 3, dtype=torch.float64)
    yaw = torch.full((F,), yaw0, dtype=torch.float64)
    if kind == "forward":
        dist = rng.uniform(0.6, 1.6)
        centre[:, 0] = dist * ease * math.sin(yaw0)
        centre[:, 2] = dist * ease * math.cos(yaw0)
        yaw = yaw + sign * rng.uniform(0.0, 0.25) * ease
    elif kind == "pan":
        yaw = yaw + sign * math.radians(rng.uniform(20, 50)) * ease
        centre[:, 0] = rng.uniform(-0.15, 0.15) * ease
        centre[:, 2] = rng.uniform(0.0, 0.2) * ease
    elif kind == "orbit":
        # Circle a point `radius` ahead, always looking at it.
        radius = rng.uniform(1.5, 3.0)
        yaw = yaw + sign * math.radians(rng.uniform(15, 35)) * ease
        centre[:, 0] = radius * (math.sin(yaw0) - torch.sin(yaw))
        centre[:, 2] = radius * (math.cos(yaw0) - torch.cos(yaw))
    elif kind == "strafe":
        dist = sign * rng.uniform(0.5, 1.2)
        centre[:, 0] = dist * ease * math.cos(yaw0)
        centre[:, 2] = -dist * ease * math.sin(yaw0)
        yaw = yaw + rng.uniform(-0.1, 0.1) * ease
    else:
        raise ValueError(f"unknown trajectory kind {kind!r}; choose from {TRAJECTORIES}")
    centre[:, 1] = rng.uniform(-0.1, 0.1) * ease  # a hand-held camera bobs a little
    pitch = pitch0 + rng.uniform(-0.08, 0.08) * ease
    roll = torch.as_tensor(rng.uniform(-0.04, 0.04), dtype=torch.float64) * ease
    c2w = rt_to_matrix(_rot(yaw, pitch, roll), centre)
    hfov = math.radians(rng.uniform(*cfg.hfov_deg))
    f = cfg.width / 2 / math.tan(hfov / 2)
    K = intrinsics(*(torch.full((F,), v, dtype=torch.float64) for v in (f, f, cfg.width / 2, cfg.height / 2)))
    return c2w, K


def _intersect(o: Tensor, d: Tensor, room: Room) -> tuple[Tensor, Tensor, Tensor]:
    """Nearest hit of each frame's rays (centres o [F,3], directions d [3,F,R], component-major) -> (t, surface id,
    face axis), each [F,R]."""
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    # Component-major: every product below is a per-frame (or per-box) offset times a contiguous row of rays, and the
    # reductions over the 3 axes run over the outermost dimension (a reduction over an innermost dimension of 3 is
    # slow). The same operations on the same numbers as ray by ray with the axes innermost.
    oc = o.T[:, :, None]  # [3, F, 1]
    # Room, from inside: the exit face is the axis with the smallest far distance.
    t_far = torch.maximum((room.lo[:, None, None] - oc) * inv, (room.hi[:, None, None] - oc) * inv)
    t, axis = t_far.min(dim=0)
    positive = d.gather(0, axis[None])[0] > 0
    surf = axis * 2 + positive.long()
    if room.box_lo.shape[0]:
        # Slabs laid out [axis, F, box, ray]: with one centre per frame, 45% less time than ray by ray with the axes
        # innermost (profiled on 240 training clips), and the same numbers.
        ia = inv[:, :, None, :]
        t1 = (room.box_lo.T[:, None, :] - oc)[..., None] * ia
        t2 = (room.box_hi.T[:, None, :] - oc)[..., None] * ia
        tn, ax_n = torch.minimum(t1, t2).max(dim=0)  # [F, N, R]
        tf = torch.maximum(t1, t2).min(dim=0).values
        hit = (tn <= tf) & (tn > 1e-6)
        tn = torch.where(hit, tn, torch.full_like(tn, float("inf")))
        tb, idx = tn.min(dim=1)
        closer = tb < t
        ax_b = ax_n.gather(1, idx[:, None])[:, 0]
        # The entry face is on the side the ray comes from.
        side = (d.gather(0, ax_b[None])[0] < 0).long()
        t = torch.where(closer, tb, t)
        surf = torch.where(closer, 6 + idx * 6 + ax_b * 2 + side, surf)
        axis = torch.where(closer, ax_b, axis)
    return t, surf, axis


_LIGHT = torch.tensor([0.3, -0.8, 0.5], dtype=torch.float64)
# |normal . light| for a face normal along each axis: the Lambert term, looked up by the face's axis.
_LAMBERT = (_LIGHT / _LIGHT.norm()).abs()


def _shade(p: Tensor, surf: Tensor, axis: Tensor, t: Tensor, tex: Tensor) -> Tensor:
    """Procedural colour at hit points p [3,R] (component-major) -> rgb [3,R] in [0,1]."""
    prm = tex.T[:, surf]  # [9, R]: each parameter a contiguous row
    # The two in-plane coordinates of the face.
    a1 = torch.where(axis == 0, p[2], p[0])
    a2 = torch.where(axis == 1, p[2], p[1])
    fa, fb, cs = prm[6], prm[7], prm[8]
    checker = (torch.floor(a1 / cs) + torch.floor(a2 / cs)) % 2
    wave = 0.5 + 0.5 * torch.sin(fa * a1 * 2.1 + fb * a2 * 1.7 + surf.double())
    mix = 0.55 * checker + 0.45 * wave
    albedo = prm[:3] * (1 - mix) + prm[3:6] * mix
    lam = _LAMBERT[axis]
    fog = torch.exp(-0.06 * t)  # a depth cue, as indoor lighting falls off away from the camera
    return (albedo * (0.65 + 0.6 * lam) * fog).clamp(0, 1)


def render(room: Room, cams: Cameras, supersample: int = 2) -> Tensor:
    """Ray-cast `cams` (B=1) in `room` -> frames [F, 3, H, W] in [-1, 1]."""
    H, W = cams.height, cams.width
    s = supersample
    d = ray_directions(cams.to(torch.float64), H * s, W * s)[0]  # [F, Hs, Ws, 3]
    F = d.shape[0]
    o = cams.centres[0].double()
    d = d.reshape(F, -1, 3).permute(2, 0, 1).contiguous()  # [3, F, R]
    t, surf, axis = _intersect(o, d, room)
    p = o.T[:, :, None] + t * d
    rgb = _shade(p.reshape(3, -1), surf.reshape(-1), axis.reshape(-1), t.reshape(-1), room.tex).float()
    # Channels innermost in memory, as the frames have always been laid out: training compiles its graphs for its
    # inputs' strides, so another layout would build other graphs, with other roundings.
    img = rgb.T.contiguous().reshape(F, H * s, W * s, 3).permute(0, 3, 1, 2)
    if s > 1:
        img = Fnn.avg_pool2d(img, s)
    return img * 2 - 1


@dataclass
class Clip:
    frames: Tensor  # [F, 3, H, W] in [-1, 1]
    cameras: Cameras  # B = 1, world frame of the room
    kind: str
    seed: int


def synth_clip(seed: int, cfg: SynthRoomsConfig = SynthRoomsConfig(), kind: str | None = None) -> Clip:
    """Render the clip of `seed` (the same seed always gives the same clip)."""
    rng = np.random.default_rng(seed)
    room = make_room(rng, cfg)
    kind = kind or TRAJECTORIES[int(rng.integers(len(TRAJECTORIES)))]
    c2w, K = make_trajectory(rng, cfg, kind)
    cams = Cameras(K[None], c2w[None], cfg.height, cfg.width)
    frames = render(room, cams, cfg.supersample)
    return Clip(frames, Cameras(K[None].float(), c2w[None].float(), cfg.height, cfg.width), kind, seed)
