import pytest
import torch

from raxels.cameras import Cameras, canonicalise, intrinsics, project_to_rotation, rt_to_matrix
from raxels.data.realestate10k import shared_clip_pairs


def random_cameras(B: int, F: int, H: int, W: int, seed: int = 0, dtype=torch.float64) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    R = project_to_rotation(torch.randn(B, F, 3, 3, generator=g, dtype=dtype))
    t = torch.randn(B, F, 3, generator=g, dtype=dtype)
    f = (0.6 + 0.8 * torch.rand(B, F, generator=g, dtype=dtype)) * W
    aspect = 0.9 + 0.2 * torch.rand(B, F, generator=g, dtype=dtype)
    cx = W / 2 + 3 * torch.randn(B, F, generator=g, dtype=dtype)
    cy = H / 2 + 3 * torch.randn(B, F, generator=g, dtype=dtype)
    return Cameras(intrinsics(f, f * aspect, cx, cy), rt_to_matrix(R, t), H, W)


@pytest.fixture
def canonical_random_cameras():
    return canonicalise(random_cameras(3, 8, 48, 64))[0]


@pytest.fixture(scope="session")
def re10k_pairs():
    pairs = shared_clip_pairs()
    if not pairs:
        pytest.skip("../shared/data/realestate10k_cameractrl is not present")
    return pairs
