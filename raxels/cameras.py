"""The one place for camera conventions.

Every camera in raxels is OpenCV (x right, y down, z forward), camera-to-world 4x4 (`c2w`), with intrinsics `K`
in pixels of the frame it belongs to (pixel centres at half-integers, so the centre of a W x H image is W/2, H/2).
Readers of other formats convert at the io boundary and build a `Cameras` through this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

ROT_TOL = 1e-4


@dataclass
class Cameras:
    """A batch of camera trajectories.

    K:   [B, F, 3, 3] pixel intrinsics (zero skew) for images of `height` x `width`.
    c2w: [B, F, 4, 4] OpenCV camera-to-world.
    """

    K: Tensor
    c2w: Tensor
    height: int
    width: int

    @property
    def batch_shape(self) -> tuple[int, int]:
        return tuple(self.c2w.shape[:2])  # type: ignore[return-value]

    @property
    def R(self) -> Tensor:
        """[B, F, 3, 3] camera-to-world rotation."""
        return self.c2w[..., :3, :3]

    @property
    def centres(self) -> Tensor:
        """[B, F, 3] camera centres in world coordinates."""
        return self.c2w[..., :3, 3]

    def to(self, *args, **kwargs) -> Cameras:
        return Cameras(self.K.to(*args, **kwargs), self.c2w.to(*args, **kwargs), self.height, self.width)

    def __getitem__(self, idx) -> Cameras:
        """Index the batch dimension (keeps it: an int index gives B=1)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return Cameras(self.K[idx], self.c2w[idx], self.height, self.width)

    def frames(self, idx) -> Cameras:
        """Select frames (second dimension)."""
        return Cameras(self.K[:, idx], self.c2w[:, idx], self.height, self.width)

    def resized(self, height: int, width: int) -> Cameras:
        """Intrinsics for the same cameras on an image resized (not cropped) to height x width."""
        return Cameras(scale_intrinsics(self.K, width / self.width, height / self.height), self.c2w, height, width)


def make_cameras(K: Tensor, c2w: Tensor, height: int, width: int, name: str = "cameras") -> Cameras:
    """Build validated `Cameras`, adding the batch dimension to [F,3,3]/[F,4,4] inputs."""
    K = torch.as_tensor(K)
    c2w = torch.as_tensor(c2w)
    if K.dim() == 3:
        K = K.unsqueeze(0)
    if c2w.dim() == 3:
        c2w = c2w.unsqueeze(0)
    cams = Cameras(K.to(c2w.dtype), c2w, int(height), int(width))
    validate(cams, name)
    return cams


def validate(cams: Cameras, name: str = "cameras") -> None:
    """Raise a one-line ValueError naming `name` if the cameras are not usable."""
    K, c2w = cams.K, cams.c2w
    if K.dim() != 4 or K.shape[-2:] != (3, 3):
        raise ValueError(f"{name}: K must be [B,F,3,3], got {list(K.shape)}")
    if c2w.dim() != 4 or c2w.shape[-2:] != (4, 4):
        raise ValueError(f"{name}: c2w must be [B,F,4,4], got {list(c2w.shape)}")
    if K.shape[:2] != c2w.shape[:2]:
        raise ValueError(f"{name}: K has {list(K.shape[:2])} cameras but c2w has {list(c2w.shape[:2])}")
    if c2w.shape[1] == 0:
        raise ValueError(f"{name}: no cameras")
    if cams.height <= 0 or cams.width <= 0:
        raise ValueError(f"{name}: image size must be positive, got {cams.width}x{cams.height} (width x height)")
    for label, t in (("K", K), ("c2w", c2w)):
        bad = ~torch.isfinite(t).flatten(2).all(-1)
        if bad.any():
            b, f = bad.nonzero()[0].tolist()
            raise ValueError(f"{name}: non-finite values (NaN/inf) in {label} of camera {f} (batch {b})")
    R = c2w[..., :3, :3].double()
    eye = torch.eye(3, dtype=R.dtype)
    err = (R.transpose(-1, -2) @ R - eye).abs().amax((-1, -2))
    det = torch.linalg.det(R)
    bad = (err > ROT_TOL) | (det <= 0)
    if bad.any():
        b, f = bad.nonzero()[0].tolist()
        raise ValueError(
            f"{name}: camera {f} (batch {b}) rotation is not a proper rotation "
            f"(|R^T R - I| = {err[b, f]:.2e}, det = {det[b, f]:.4f})"
        )
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=c2w.dtype)
    if (c2w[..., 3, :] - bottom).abs().amax() > 1e-6:
        raise ValueError(f"{name}: c2w bottom row must be [0, 0, 0, 1]")
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    if (fx <= 0).any() or (fy <= 0).any():
        f = ((fx <= 0) | (fy <= 0)).nonzero()[0].tolist()
        raise ValueError(f"{name}: focal length must be positive (camera {f[1]}, batch {f[0]})")


def intrinsics(fx: Tensor, fy: Tensor, cx: Tensor, cy: Tensor) -> Tensor:
    """[...] focal lengths and principal points (pixels) -> [..., 3, 3] K."""
    fx, fy, cx, cy = torch.broadcast_tensors(*(torch.as_tensor(v) for v in (fx, fy, cx, cy)))
    K = torch.zeros(*fx.shape, 3, 3, dtype=fx.dtype if fx.is_floating_point() else torch.float32)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1.0
    return K


def scale_intrinsics(K: Tensor, sx: float, sy: float) -> Tensor:
    """K for an image resized by (sx, sy); pixel centres stay at half-integers, so cx scales with the width."""
    S = torch.diag(torch.tensor([sx, sy, 1.0], dtype=K.dtype))
    return S @ K


def crop_intrinsics(K: Tensor, left: float, top: float) -> Tensor:
    """K for an image cropped starting at pixel (left, top)."""
    K = K.clone()
    K[..., 0, 2] -= left
    K[..., 1, 2] -= top
    return K


def rt_to_matrix(R: Tensor, t: Tensor) -> Tensor:
    """[...,3,3] rotation and [...,3] translation -> [...,4,4] rigid transform."""
    M = torch.zeros(*R.shape[:-2], 4, 4, dtype=R.dtype, device=R.device)
    M[..., :3, :3] = R
    M[..., :3, 3] = t
    M[..., 3, 3] = 1.0
    return M


def invert_rigid(M: Tensor) -> Tensor:
    """Inverse of [...,4,4] rigid transforms (w2c <-> c2w) without a general matrix inverse."""
    R = M[..., :3, :3].transpose(-1, -2)
    return rt_to_matrix(R, -(R @ M[..., :3, 3:4]).squeeze(-1))


@dataclass
class CanonicalFrame:
    """The similarity that took world coordinates to canonical ones: x_canon = scale * (ref_w2c @ x_world)."""

    ref_c2w: Tensor  # [B, 4, 4] the first camera in the original world
    scale: Tensor  # [B]


def canonicalise(cams: Cameras) -> tuple[Cameras, CanonicalFrame]:
    """First camera becomes the identity and the farthest camera centre lies at distance 1.

    A trajectory whose cameras share one centre (pure rotation) keeps scale 1.
    """
    ref = cams.c2w[:, 0]
    rel = invert_rigid(ref).unsqueeze(1) @ cams.c2w
    dist = rel[..., :3, 3].norm(dim=-1).amax(dim=1)
    scale = torch.where(dist > 1e-8, 1.0 / dist.clamp_min(1e-8), torch.ones_like(dist))
    rel = rel.clone()
    rel[..., :3, 3] = rel[..., :3, 3] * scale[:, None, None]
    return Cameras(cams.K, rel, cams.height, cams.width), CanonicalFrame(ref, scale)


def uncanonicalise(cams: Cameras, frame: CanonicalFrame) -> Cameras:
    """Inverse of `canonicalise`: back to the original world frame and scale."""
    c2w = cams.c2w.clone()
    c2w[..., :3, 3] = c2w[..., :3, 3] / frame.scale[:, None, None]
    c2w = frame.ref_c2w.unsqueeze(1) @ c2w
    return Cameras(cams.K, c2w, cams.height, cams.width)


def relative_rotation_deg(R_a: Tensor, R_b: Tensor) -> Tensor:
    """Geodesic angle in degrees between rotations [...,3,3]."""
    Q = R_a.transpose(-1, -2) @ R_b
    cos = (Q.diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    # atan2 rather than acos: acos loses all precision for angles below ~0.02 deg in float32.
    axis = torch.stack([Q[..., 2, 1] - Q[..., 1, 2], Q[..., 0, 2] - Q[..., 2, 0], Q[..., 1, 0] - Q[..., 0, 1]], -1)
    return torch.rad2deg(torch.atan2(axis.norm(dim=-1) / 2, cos))


def project_to_rotation(M: Tensor) -> Tensor:
    """Nearest proper rotation to [...,3,3] matrices (SVD)."""
    U, _, Vh = torch.linalg.svd(M)
    d = torch.sign(torch.linalg.det(U @ Vh))
    D = torch.ones(*M.shape[:-2], 3, dtype=M.dtype, device=M.device)
    D[..., 2] = d
    return U @ torch.diag_embed(D) @ Vh


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """[...,4] unit quaternions (w, x, y, z), the COLMAP order -> [...,3,3] rotations."""
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - z * w),
            2 * (x * z + y * w),
            2 * (x * y + z * w),
            1 - 2 * (x * x + z * z),
            2 * (y * z - x * w),
            2 * (x * z - y * w),
            2 * (y * z + x * w),
            1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def matrix_to_quaternion(R: Tensor) -> Tensor:
    """[...,3,3] rotations -> [...,4] unit quaternions (w, x, y, z) with w >= 0 (Shepperd's method)."""
    m = R.reshape(-1, 3, 3)
    tr = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cands = torch.stack(
        [
            torch.stack([1 + tr, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], -1),
            torch.stack(
                [m[:, 2, 1] - m[:, 1, 2], 1 + 2 * m[:, 0, 0] - tr, m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], -1
            ),
            torch.stack(
                [m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 + 2 * m[:, 1, 1] - tr, m[:, 1, 2] + m[:, 2, 1]], -1
            ),
            torch.stack(
                [m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1], 1 + 2 * m[:, 2, 2] - tr], -1
            ),
        ],
        dim=1,
    )  # [N,4 candidates,4]; candidate i is 4*q*q_i, best conditioned where q_i is largest
    diag = torch.stack([tr, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    best = diag.argmax(-1)
    q = cands[torch.arange(m.shape[0]), best]
    q = q / q.norm(dim=-1, keepdim=True)
    q = q * torch.where(q[:, :1] < 0, -1.0, 1.0).to(q.dtype)
    return q.reshape(*R.shape[:-2], 4)


# OpenGL / Blender / nerfstudio cameras look down -z with y up; OpenCV looks down +z with y down.
OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))


def opengl_to_opencv_c2w(c2w_gl: Tensor) -> Tensor:
    return c2w_gl @ OPENGL_TO_OPENCV.to(c2w_gl)


def opencv_to_opengl_c2w(c2w_cv: Tensor) -> Tensor:
    return c2w_cv @ OPENGL_TO_OPENCV.to(c2w_cv)
