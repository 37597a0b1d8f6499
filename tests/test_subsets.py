import numpy as np
import pytest
import torch

from raxels.cameras import Cameras, canonicalise, project_to_rotation, rt_to_matrix
from raxels.data.synthrooms import SynthRoomsConfig, make_trajectory
from raxels.subsets import consecutive_windows, interleaved_subsets, merge_subsets, own_subset
from tests.conftest import random_cameras


@pytest.mark.parametrize("frames", [2, 8, 16, 17, 24, 31, 32, 33, 64, 100, 301])
@pytest.mark.parametrize("window", [2, 4, 8, 16])
def test_plan_covers_every_frame_once_in_equal_subsets(frames, window):
    plan = interleaved_subsets(frames, window)
    assert len({len(p) for p in plan}) == 1 and len(plan[0]) <= window
    assert all(p[0] == 0 and p == sorted(set(p)) for p in plan)
    assert set().union(*plan) == set(range(frames))
    if frames <= window:
        assert plan == [list(range(frames))]
    subset, position = own_subset(frames, plan)
    assert [plan[s][p] for s, p in zip(subset.tolist(), position.tolist())] == list(range(frames))
    # Each frame but 0 is dealt to one subset, in turn: its own subset is (j - 1) % S.
    assert subset[1:].tolist() == [(j - 1) % len(plan) for j in range(1, frames)]
    # Every subset spans the clip: its frames are S apart, as a training clip's are 1 apart.
    assert all(p[-1] >= frames - len(plan) for p in plan)


def test_plan_rejects_a_window_below_two():
    with pytest.raises(ValueError, match="window"):
        interleaved_subsets(10, 1)


def _subset_estimates(cams: Cameras, plan: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """What a perfect estimator returns per subset: its cameras canonicalised on their own (own scale each)."""
    canon = [canonicalise(cams.frames(idx))[0] for idx in plan]
    return torch.stack([c.c2w for c in canon]), torch.stack([c.K for c in canon])


def test_merge_recovers_the_whole_trajectory_exactly_on_a_straight_path():
    # Centres on a line at constant speed: linear interpolation between a subset's frames is exact, so the
    # fitted scales must be too.
    B, F = 2, 29
    g = torch.Generator().manual_seed(0)
    R = project_to_rotation(torch.randn(B, F, 3, 3, generator=g, dtype=torch.float64))
    t = torch.arange(F, dtype=torch.float64)[None, :, None] * torch.randn(B, 1, 3, generator=g, dtype=torch.float64)
    cams = Cameras(random_cameras(B, F, 24, 32).K, rt_to_matrix(R, t + 0.3), 24, 32)
    plan = interleaved_subsets(F, 8)
    assert len(plan) > 1
    c2w, K = merge_subsets(*_subset_estimates(cams, plan), plan, F)
    truth = canonicalise(cams)[0]
    merged = canonicalise(Cameras(K, c2w, 24, 32))[0]
    torch.testing.assert_close(merged.c2w, truth.c2w)
    torch.testing.assert_close(merged.K, truth.K)


def test_merge_on_a_curved_synthrooms_path_is_close():
    c2w, K = make_trajectory(np.random.default_rng(5), SynthRoomsConfig(frames=48, height=32, width=32), "orbit")
    cams = Cameras(K[None], c2w[None], 32, 32)
    plan = interleaved_subsets(48, 16)
    c2w, K = merge_subsets(*_subset_estimates(cams, plan), plan, 48)
    merged = canonicalise(Cameras(K, c2w, 32, 32))[0]
    truth = canonicalise(cams)[0]
    assert (merged.centres - truth.centres).norm(dim=-1).max() < 0.01
    torch.testing.assert_close(merged.R, truth.R)


def test_merge_of_a_pure_rotation_stays_finite():
    cams = random_cameras(1, 20, 24, 32)
    cams.c2w[..., :3, 3] = 0
    plan = interleaved_subsets(20, 8)
    c2w, _ = merge_subsets(*_subset_estimates(cams, plan), plan, 20)
    assert torch.isfinite(c2w).all() and c2w[..., :3, 3].abs().max() == 0


@pytest.mark.parametrize("frames", [2, 5, 16, 17, 31, 32, 64, 100])
@pytest.mark.parametrize("window", [2, 4, 16])
@pytest.mark.parametrize("given", [1, 2, 20])
def test_windows_chain_on_their_last_frame_and_cover_the_clip(frames, window, given):
    given = min(given, frames - 1)
    spans = consecutive_windows(frames, window, given)
    assert spans[0][0] == 0 and spans[-1][1] == frames
    assert spans[0][1] > given  # the given frames and at least one to generate
    assert all(b[0] == a[1] - 1 for a, b in zip(spans, spans[1:]))  # each starts on the last frame before it
    assert all(2 <= e - s <= window for s, e in spans[1:]) and spans[0][1] == min(frames, max(window, given + 1))
    assert all(e - s == window for s, e in spans[1:-1])  # full windows but the last
    if frames <= window:
        assert spans == [(0, frames)]
    if (frames, window, given) == (32, 16, 1):
        assert spans == [(0, 16), (15, 31), (30, 32)]


def test_windows_reject_a_window_below_two():
    with pytest.raises(ValueError, match="window"):
        consecutive_windows(10, 1)
