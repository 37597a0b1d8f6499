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
    X = torch.randn(200, 30, 9, generator=g, dtype=torch.float64)
    B = X.transpose(1, 2) @ X
    v = smallest_eigenvector(B, iters=30)
    ref = torch.linalg.eigh(B).eigenvectors[..., 0]
    assert torch.allclose((v * ref).sum(-1).abs(), torch.ones(200, dtype=torch.float64), atol=1e-6)


def test_orthonormalise_returns_rotations():
    R = project_to_rotation(torch.randn(50, 3, 3, dtype=torch.float64))
    noisy = R + 1e-6 * torch.randn(50, 3, 3, dtype=torch.float64)
    Q = orthonormalise(noisy)
    assert torch.allclose(Q.transpose(1, 2) @ Q, torch.eye(3, dtype=torch.float64).expand(50, 3, 3), atol=1e-12)
    assert torch.allclose(Q, R, atol=1e-5) and (torch.linalg.det(Q) > 0).all()
