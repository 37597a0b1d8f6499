"""Cameras <-> raxel images.

A raxel is the pixel's ray origin plus its unit world direction, o + d. With canonical cameras (|o| <= 1) the sum
lies in the ball of radius 2, so raxel images are stored as (o + d) / 2 in [-1, 1], the range of video frames.

Decoding inverts this per frame, batched over all frames at once:
  1. the points x = o + d lie on the unit sphere around o: a linear least-squares sphere fit gives o
     (a few reweighted passes make it robust to outlier pixels);
  2. d = normalise(x - o) must equal R K^-1 p / |K^-1 p|, i.e. p ~ K R^T d: a direct linear transform (DLT)
     over all pixels gives M = K R^T up to scale, and an RQ decomposition splits it into K and R;
  3. a few Gauss-Newton steps on the full model (o, R, fx, fy, cx, cy) remove the bias that the linear fits
     have under noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .batched_linalg import orthonormalise, smallest_eigenvector, solve_small
from .cameras import Cameras, intrinsics, rt_to_matrix

RAXEL_SCALE = 2.0  # o + d has norm <= 2 for canonical cameras


def pixel_grid(height: int, width: int, dtype=torch.float32, device=None) -> Tensor:
    """[H, W, 2] pixel-centre coordinates (u, v) = (col + 0.5, row + 0.5)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device) + 0.5,
        torch.arange(width, dtype=dtype, device=device) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def ray_directions(cams: Cameras, height: int | None = None, width: int | None = None) -> Tensor:
    """[B, F, H, W, 3] unit world-space ray directions. A size other than the cameras' rescales K to it."""
    H, W = height or cams.height, width or cams.width
    K = cams.resized(H, W).K if (H, W) != (cams.height, cams.width) else cams.K
    uv = pixel_grid(H, W, dtype=K.dtype, device=K.device)
    fx, fy = K[..., 0, 0, None, None], K[..., 1, 1, None, None]
    cx, cy = K[..., 0, 2, None, None], K[..., 1, 2, None, None]
    x = (uv[..., 0] - cx) / fx
    y = (uv[..., 1] - cy) / fy
    dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    dirs = torch.einsum("bfij,bfhwj->bfhwi", cams.R.to(K.dtype), dirs_cam)
    return dirs / dirs.norm(dim=-1, keepdim=True)


def cameras_to_raxels(cams: Cameras, height: int | None = None, width: int | None = None) -> Tensor:
    """Cameras (expected canonical, see `cameras.canonicalise`) -> raxel images [B, F, 3, H, W] in [-1, 1]."""
    d = ray_directions(cams, height, width)
    o = cams.centres.to(d.dtype)[:, :, None, None, :]
    return ((o + d) / RAXEL_SCALE).permute(0, 1, 4, 2, 3).contiguous()


def _fit_sphere_centres(x: Tensor, w: Tensor) -> Tensor:
    """Weighted least-squares centre of unit spheres through points x [N, P, 3] (weights [N, P]) -> [N, 3].

    |x - o|^2 = 1  <=>  2 x.o - (|o|^2 - 1) = |x|^2, linear in (o, c).
    """
    A = torch.cat([2 * x, -torch.ones_like(x[..., :1])], dim=-1)
    b = (x * x).sum(-1, keepdim=True)
    Aw = A * w[..., None]
    return solve_small(Aw.transpose(1, 2) @ A, (Aw.transpose(1, 2) @ b)[..., 0])[:, :3]


def _lmeds_sphere_weights(x: Tensor, hypotheses: int = 24, sample: int = 8) -> Tensor:
    """Least-median-of-squares start for the sphere fit: fit small fixed pixel subsets, keep per frame the centre
    with the smallest median residual, and return 0/1 weights of the pixels that agree with it. Without this a
    block of corrupted pixels drags the least-squares centre away and reweighting never recovers."""
    N, P, _ = x.shape
    g = torch.Generator().manual_seed(0)  # fixed subsets: decoding stays deterministic
    idx = torch.randint(P, (hypotheses * sample,), generator=g).to(x.device)
    xs = x[:, idx].reshape(N * hypotheses, sample, 3)
    o = _fit_sphere_centres(xs, torch.ones(xs.shape[:2], dtype=x.dtype, device=x.device)).reshape(N, hypotheses, 3)
    # |x - o|^2 expanded, one batched product instead of an [N, hyp, P, 3] difference (its norm was a third of
    # the decoding time); float64 keeps the cancellation harmless for |x|, |o| ~ 1.
    sq = (x * x).sum(-1)[:, None] - 2 * o @ x.transpose(1, 2) + (o * o).sum(-1)[..., None]
    res = (sq.clamp_min(0).sqrt() - 1.0).abs()  # [N, hyp, P]
    med = res.median(dim=-1).values
    best = med.argmin(dim=-1)
    r = res[torch.arange(N), best]
    thresh = 2.5 * 1.4826 * med[torch.arange(N), best, None] + 1e-9
    return (r <= thresh).to(x.dtype)


def _dlt_kr(d: Tensor, uv: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Solve p ~ M d for M = K R^T over pixels, then split by RQ. d [N,P,3] unit world rays, uv [P,2] normalised
    pixel coords, w [N,P] weights. Returns K_norm [N,3,3] (in normalised pixel coords) and R [N,3,3] (c2w)."""
    N = d.shape[0]
    # Rows of the homogeneous system for m = vec(M) (row-major), per pixel: r1 = (-d, 0, u d), r2 = (0, -d, v d).
    # Their normal matrix sum_p w (r1 r1^T + r2 r2^T) has 3x3 blocks that are weighted moments of d d^T, so it is
    # built from four moments in one batched product instead of from the [N, 2P, 9] system (4x faster).
    u, v = uv[:, 0], uv[:, 1]
    feats = torch.stack([w, w * u, w * v, w * (u * u + v * v)], dim=-1)  # [N, P, 4]
    dd = (d[..., :, None] * d[..., None, :]).flatten(2)  # [N, P, 9]
    S0, Su, Sv, S2 = (feats.transpose(1, 2) @ dd).reshape(N, 4, 3, 3).unbind(1)
    Z = torch.zeros_like(S0)
    AtA = torch.cat([torch.cat([S0, Z, -Su], -1), torch.cat([Z, S0, -Sv], -1), torch.cat([-Su, -Sv, S2], -1)], dim=1)
    m = smallest_eigenvector(AtA).reshape(N, 3, 3)
    # M = K R^T with K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]: the rows of R^T follow by Gram-Schmidt from the
    # bottom row (closed-form RQ, no per-matrix LAPACK call).
    m3 = m[:, 2]
    lam = 1.0 / m3.norm(dim=-1, keepdim=True)
    m = m * lam[..., None]
    r3 = m[:, 2]
    cy = (m[:, 1] * r3).sum(-1, keepdim=True)
    y = m[:, 1] - cy * r3
    fy = y.norm(dim=-1, keepdim=True)
    r2 = y / fy
    cx = (m[:, 0] * r3).sum(-1, keepdim=True)
    skew = (m[:, 0] * r2).sum(-1, keepdim=True)
    x = m[:, 0] - skew * r2 - cx * r3
    fx = x.norm(dim=-1, keepdim=True)
    r1 = x / fx
    # m is known up to sign; -m gives the same K and all three rows negated (a left-handed frame).
    flip = torch.where((torch.cross(r1, r2, dim=-1) * r3).sum(-1, keepdim=True) < 0, -1.0, 1.0).to(m.dtype)
    R_t = torch.stack([r1, r2, r3], dim=1) * flip[..., None]
    K = torch.zeros_like(m)
    K[:, 0, 0], K[:, 0, 1], K[:, 0, 2] = fx[:, 0], skew[:, 0], cx[:, 0]
    K[:, 1, 1], K[:, 1, 2], K[:, 2, 2] = fy[:, 0], cy[:, 0], 1.0
    return K, R_t.transpose(1, 2)


def _skew(v: Tensor) -> Tensor:
    z = torch.zeros_like(v[..., 0])
    return torch.stack([z, -v[..., 2], v[..., 1], v[..., 2], z, -v[..., 0], -v[..., 1], v[..., 0], z], dim=-1).reshape(
        *v.shape[:-1], 3, 3
    )


def _so3_exp(w: Tensor) -> Tensor:
    theta = w.norm(dim=-1, keepdim=True).unsqueeze(-1)
    Wx = _skew(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(Wx)
    small = theta < 1e-8
    t = theta.clamp_min(1e-8)
    A = torch.where(small, torch.ones_like(t), torch.sin(t) / t)
    B = torch.where(small, 0.5 * torch.ones_like(t), (1 - torch.cos(t)) / (t * t))
    return eye + A * Wx + B * (Wx @ Wx)


# Directions in which the refinement may move k = (fx, fy, cx, cy): all four, one focal length with the principal
# point held at the image centre, or none (intrinsics fixed).
_K_BASIS = {
    "free": torch.eye(4, dtype=torch.float64),
    "centred": torch.tensor([[1.0], [1.0], [0.0], [0.0]], dtype=torch.float64),
    "fixed": torch.zeros(4, 0, dtype=torch.float64),
}


def _refine(x: Tensor, o: Tensor, R: Tensor, k: Tensor, uv: Tensor, iters: int, k_basis: Tensor):
    """Iteratively reweighted Gauss-Newton on the camera parameters, batched over frames: centre, rotation and the
    intrinsics directions in `k_basis` [4, m].

    The model is x = o + R n with n = r / |r|, r = ((u - cx) / fx, (v - cy) / fy, 1). Residuals are taken in the
    camera frame, e = R^T (x - o) - n (same norm, R orthonormal), where the Jacobians are closed-form (a rotation
    update is R exp([w]x)); forward differences needed eight model evaluations per step and were 4x slower.
    Cauchy weights on each pixel's residual down-weight pixels that do not fit one camera (codec artefacts)."""
    k_basis = k_basis.to(x)
    N, P, _ = x.shape
    n_par = 6 + k_basis.shape[1]
    u, v = uv[None, :, 0], uv[None, :, 1]
    for _ in range(iters):
        fx, fy, cx, cy = (k[:, i : i + 1] for i in range(4))
        r = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u).expand(N, P)], dim=-1)
        inv_norm = r.square().sum(-1, keepdim=True).rsqrt()
        n = r * inv_norm
        y = (x - o[:, None]) @ R  # rows: R^T (x - o)
        e = y - n
        w = _robust_weights(e.norm(dim=-1), _cauchy)
        # d n / d r = (I - n n^T) / |r|; r's x entry moves with fx and cx, its y entry with fy and cy.
        proj = (torch.eye(3, dtype=x.dtype, device=x.device) - n[..., :, None] * n[..., None, :]) * inv_norm[..., None]
        dn_dk = torch.stack(
            [
                -proj[..., 0] * (r[..., 0:1] / fx[..., None]),
                -proj[..., 1] * (r[..., 1:2] / fy[..., None]),
                -proj[..., 0] / fx[..., None],
                -proj[..., 1] / fy[..., None],
            ],
            dim=-1,
        )  # [N, P, 3, 4]
        # Minus the Jacobian of e in (o, w, k): R^T, -[y]x (R^T -> exp(-[w]x) R^T turns y into y - w x y) and dn/dk.
        J = torch.cat([R.transpose(1, 2)[:, None].expand(N, P, 3, 3), -_skew(y), dn_dk @ k_basis], dim=-1)
        sw = w.sqrt()[..., None, None]
        J = (J * sw).flatten(1, 2)
        res = (e * sw[..., 0]).flatten(1, 2)
        JtJ = J.transpose(1, 2) @ J
        Jtr = (J.transpose(1, 2) @ res[..., None])[..., 0]
        damp = 1e-9 * torch.eye(n_par, dtype=x.dtype, device=x.device)
        step = solve_small(JtJ + damp, Jtr)
        o = o + step[:, :3]
        R = R @ _so3_exp(step[:, 3:6])
        k = k + step[:, 6:] @ k_basis.T
    return o, R, k


INTRINSICS_MODELS = ("free", "centred", "shared")


def _centred_k(f: Tensor) -> Tensor:
    """k = (fx, fy, cx, cy) for one focal length f [N] and the principal point at the image centre."""
    return torch.stack([f, f, torch.zeros_like(f), torch.zeros_like(f)], dim=-1)


def raxels_to_cameras(
    raxels: Tensor,
    refine_iters: int = 4,
    robust_iters: int = 2,
    max_points: int | None = None,
    intrinsics_model: str = "free",
) -> Cameras:
    """Raxel images [B, F, 3, H, W] (in [-1, 1]) -> Cameras with pixel intrinsics for an H x W image.

    refine_iters: robust Gauss-Newton steps (0: the linear fits only, exact on noise-free raxels);
    robust_iters: reweighting passes of the sphere fit (0 also skips the least-median start);
    max_points: fit on at most this many pixels of a regular grid (speed; exact without noise);
    intrinsics_model: "free" fits fx, fy, cx, cy per camera; "centred" one focal length per camera with the
    principal point at the image centre; "shared" that, with one focal length for the whole clip (the median).
    On noisy raxels a free principal point trades off against rotation (a small pan moves the image like a
    shifted principal point), so the priors steady the rotations when they hold, as for video from one camera."""
    if raxels.dim() != 5 or raxels.shape[2] != 3:
        raise ValueError(f"raxel images must be [B,F,3,H,W], got {list(raxels.shape)}")
    if intrinsics_model not in INTRINSICS_MODELS:
        raise ValueError(f"intrinsics_model must be one of {INTRINSICS_MODELS}, got {intrinsics_model!r}")
    if intrinsics_model != "free" and not refine_iters:
        raise ValueError(f"intrinsics_model {intrinsics_model!r} needs refine_iters >= 1")
    if raxels.numel() == 0:
        raise ValueError(f"no raxel images to decode (shape {list(raxels.shape)})")
    lo, hi = torch.aminmax(raxels)  # one pass, and NaN propagates: a quarter of the cost of isfinite().all()
    if not (torch.isfinite(lo) and torch.isfinite(hi)):
        raise ValueError("raxel images contain NaN or inf")
    B, F, _, H, W = raxels.shape
    out_dtype = raxels.dtype
    x = raxels.permute(0, 1, 3, 4, 2)
    s = max(H, W) / 2.0
    centre = torch.tensor([W / 2, H / 2], dtype=torch.float64, device=x.device)
    uv = (pixel_grid(H, W, dtype=torch.float64, device=x.device) - centre) / s
    if max_points is not None and max_points < H * W:
        step = max(1, math.ceil(math.sqrt(H * W / max_points)))
        off_h, off_w = (H - 1) % step // 2, (W - 1) % step // 2  # centre the grid
        x, uv = x[:, :, off_h::step, off_w::step], uv[off_h::step, off_w::step]
    x, uv = x.reshape(B * F, -1, 3), uv.reshape(-1, 2)
    # Frames are solved in chunks: the per-pixel intermediates of a chunk stay in cache (2x faster on 8k frames).
    chunks = [_decode_frames(xc, uv, refine_iters, robust_iters, intrinsics_model) for xc in x.split(DECODE_CHUNK)]
    o, R, k = (torch.cat(parts) for parts in zip(*chunks))
    if intrinsics_model == "shared":
        k = _centred_k(k[:, 0].reshape(B, F).median(dim=1, keepdim=True).values.expand(B, F).reshape(-1))
        refined = [
            _refine(_widen(xc), oc, Rc, kc, uv, refine_iters, _K_BASIS["fixed"])
            for xc, oc, Rc, kc in zip(
                x.split(DECODE_CHUNK), o.split(DECODE_CHUNK), R.split(DECODE_CHUNK), k.split(DECODE_CHUNK)
            )
        ]
        o, R, k = (torch.cat(parts) for parts in zip(*refined))
        R = orthonormalise(R)
    K = intrinsics(k[:, 0] * s, k[:, 1] * s, k[:, 2] * s + W / 2, k[:, 3] * s + H / 2)
    c2w = rt_to_matrix(R, o)
    return Cameras(K.reshape(B, F, 3, 3).to(out_dtype), c2w.reshape(B, F, 4, 4).to(out_dtype), H, W)


DECODE_CHUNK = 256  # frames per chunk


def _widen(x: Tensor) -> Tensor:
    # float64: the 9x9 DLT normal matrix squares the conditioning. Widened after subsampling and per chunk, so only
    # the pixels used are converted.
    # contiguous: x comes from a channels-first image; with the 3 channels strided apart, every later reduction
    # over them (norms, sums) ran 40x slower.
    return x.double().contiguous() * RAXEL_SCALE


def _decode_frames(x: Tensor, uv: Tensor, refine_iters: int, robust_iters: int, intrinsics_model: str):
    """Raxel pixels x [N, P, 3] (stored scale) at normalised pixel coords uv [P, 2] -> per-frame centre o [N, 3],
    rotation R [N, 3, 3] and k = (fx, fy, cx, cy) [N, 4] in normalised pixel units."""
    x = _widen(x)
    w = _lmeds_sphere_weights(x) if robust_iters else torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
    for it in range(robust_iters + 1):
        o = _fit_sphere_centres(x, w)
        d = x - o[:, None]
        r = d.norm(dim=-1)
        if it < robust_iters:
            w = _robust_weights(r - 1.0, _cauchy)
    Kn, R = _dlt_kr(d / r[..., None], uv, w)
    k = torch.stack([Kn[:, 0, 0], Kn[:, 1, 1], Kn[:, 0, 2], Kn[:, 1, 2]], dim=-1)
    if intrinsics_model != "free":
        k = _centred_k(k[:, :2].mean(-1))
    if refine_iters:
        o, R, k = _refine(x, o, R, k, uv, refine_iters, _K_BASIS["free" if intrinsics_model == "free" else "centred"])
        R = orthonormalise(R)
    return o, R, k


def _cauchy(a: Tensor) -> Tensor:
    return 1.0 / (1.0 + a * a)


def _robust_weights(res: Tensor, rho) -> Tensor:
    """IRLS weights with a per-frame scale from the median absolute residual (2.385: Cauchy's 95% constant)."""
    scale = 1.4826 * res.abs().median(dim=-1, keepdim=True).values.clamp_min(1e-9)
    return rho(res.abs() / (2.385 * scale))
