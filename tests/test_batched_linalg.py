import torch

from raxels.batched_linalg import orthonormalise, smallest_eigenvector, solve_small
from raxels.cameras import project_to_rotation


def test_solve_small_matches_lapack_including_pivoting():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(500, 7, 7, generator=g, dtype=torch.float64)
    A[:10, 0, 0] = 0.0  # needs a row swap
    b = torch.randn(500, 7, generator=g, dtype=torch.float64)
    assert torch.allclose(solve_small(A, b), torch.linalg.solve(A, b), atol=1e-9)


def test_smallest_eigenvector_matches_eigh():
    g = torch.Generator().manual_seed(1)
    # The DLT regime: one eigenvalue near zero, the rest well above it.
    Q = torch.linalg.qr(torch.randn(200, 9, 9, generator=g, dtype=torch.float64)).Q
    lam = torch.cat(
        [torch.full((200, 1), 1e-3, dtype=torch.float64), 1 + torch.rand(200, 8, generator=g, dtype=torch.float64)], 1
    )
    B = Q @ torch.diag_embed(lam) @ Q.transpose(1, 2)
    v = smallest_eigenvector(B)
    ref = torch.linalg.eigh(B).eigenvectors[..., 0]
    assert torch.allclose((v * ref).sum(-1).abs(), torch.ones(200, dtype=torch.float64), atol=1e-6)


def test_orthonormalise_returns_rotations():
    R = project_to_rotation(torch.randn(50, 3, 3, dtype=torch.float64))
    noisy = R + 1e-6 * torch.randn(50, 3, 3, dtype=torch.float64)
    Q = orthonormalise(noisy)
    assert torch.allclose(Q.transpose(1, 2) @ Q, torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-12)
    assert torch.allclose(Q, R, atol=1e-5) and (torch.linalg.det(Q) > 0).all()


def test_solve_small_is_finite_on_singular_matrices():
    A = torch.eye(4, dtype=torch.float64).repeat(3, 1, 1)
    A[1] = 0.0  # singular: LAPACK reports it, the elimination fallback answers
    A[2, 3, 3] = 0.0
    b = torch.ones(3, 4, dtype=torch.float64)
    x = solve_small(A, b)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[0], b[0])
