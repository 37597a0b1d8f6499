"""Tiny dense linear algebra (n <= 10) vectorised over a large batch.

torch's batched LAPACK routines call one routine per matrix, which costs ~0.1 ms per 9x9 problem on a CPU;
decoding 20k cameras a second needs every step to be one tensor op over the whole batch instead.
"""

from __future__ import annotations

import torch
from torch import Tensor


def solve_small(A: Tensor, b: Tensor) -> Tensor:
    """Solve A x = b for A [N, n, n], b [N, n] by Gaussian elimination with partial pivoting -> x [N, n]."""
    N, n, _ = A.shape
    M = torch.cat([A, b[..., None]], dim=-1).clone()
    rows = torch.arange(N, device=A.device)
    for k in range(n):
        piv = M[:, k:, k].abs().argmax(dim=-1) + k
        top, pivot_row = M[:, k].clone(), M[rows, piv].clone()
        M[rows, piv] = top
        M[:, k] = pivot_row
        denom = M[:, k, k]
        denom = torch.where(denom.abs() < 1e-300, torch.full_like(denom, 1e-300), denom)
        M[:, k + 1 :] -= (M[:, k + 1 :, k] / denom[:, None])[..., None] * M[:, k : k + 1]
    x = torch.zeros(N, n, dtype=A.dtype, device=A.device)
    for k in reversed(range(n)):
        denom = M[:, k, k]
        denom = torch.where(denom.abs() < 1e-300, torch.full_like(denom, 1e-300), denom)
        x[:, k] = (M[:, k, n] - (M[:, k, k + 1 : n] * x[:, k + 1 :]).sum(-1)) / denom
    return x


def smallest_eigenvector(B: Tensor, iters: int = 4) -> Tensor:
    """Unit eigenvector of the smallest eigenvalue of symmetric PSD B [N, n, n] by shifted inverse iteration."""
    N, n, _ = B.shape
    scale = B.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-300) / n
    shifted = B + (1e-10 * scale)[:, None, None] * torch.eye(n, dtype=B.dtype, device=B.device)
    # An irregular start: a regular one can be orthogonal to the answer for symmetric problems.
    v = (1.0 + 0.1 * torch.arange(n, dtype=B.dtype, device=B.device) ** 1.5).expand(N, n)
    for _ in range(iters):
        v = solve_small(shifted, v)
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    return v


def orthonormalise(R: Tensor) -> Tensor:
    """Gram-Schmidt on the columns of [N, 3, 3] near-rotations (cheap clean-up of round-off)."""
    c0 = R[..., 0] / R[..., 0].norm(dim=-1, keepdim=True)
    c1 = R[..., 1] - (R[..., 1] * c0).sum(-1, keepdim=True) * c0
    c1 = c1 / c1.norm(dim=-1, keepdim=True)
    return torch.stack([c0, c1, torch.cross(c0, c1, dim=-1)], dim=-1)
