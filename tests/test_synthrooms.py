import pytest
import torch

from raxels.cameras import canonicalise, validate
from raxels.data.batches import synthrooms_batch
from raxels.data.synthrooms import TRAJECTORIES, SynthRoomsConfig, make_room, render, synth_clip


def test_deterministic_by_seed():
    a, b = synth_clip(3), synth_clip(3)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.cameras.c2w, b.cameras.c2w)
    assert not torch.equal(a.frames, synth_clip(4).frames)


@pytest.mark.parametrize("kind", TRAJECTORIES)
def test_each_trajectory_moves_and_is_valid(kind):
    clip = synth_clip(10, kind=kind)
    assert clip.frames.shape == (16, 3, 64, 64) and clip.kind == kind
    assert clip.frames.min() >= -1 and clip.frames.max() <= 1
    validate(clip.cameras)
    # The video changes over time and the camera moves (translation or rotation).
    assert (clip.frames[-1] - clip.frames[0]).abs().mean() > 0.02
    canon, _ = canonicalise(clip.cameras)
    from raxels.cameras import relative_rotation_deg

    moved = canon.centres[0, -1].norm() > 0.1 or relative_rotation_deg(canon.R[0, 0], canon.R[0, -1]) > 5
    assert moved


def test_render_matches_camera_geometry():
    """Rendering a frame twice with a camera shifted by one pixel's angle shifts the image by one pixel."""
    import numpy as np

    cfg = SynthRoomsConfig(supersample=1)
    clip = synth_clip(5, cfg, kind="pan")
    room = make_room(np.random.default_rng(5), cfg)
    cams = clip.cameras.frames(slice(0, 1)).to(torch.float64)
    img = render(room, cams, 1)
    # Shift the principal point by 1 px: the picture moves 1 px to the right.
    shifted = type(cams)(cams.K.clone(), cams.c2w, cams.height, cams.width)
    shifted.K[..., 0, 2] += 1
    img2 = render(room, shifted, 1)
    assert torch.allclose(img2[..., 1:], img[..., :-1], atol=1e-5)


def test_config_sizes():
    clip = synth_clip(1, SynthRoomsConfig(frames=4, height=32, width=48))
    assert clip.frames.shape == (4, 3, 32, 48) and clip.cameras.K.shape == (1, 4, 3, 3)


def test_batches_carry_the_trajectory_kind():
    cfg = SynthRoomsConfig(frames=2, height=8, width=8)
    kinds = synthrooms_batch([3, 4, 5, 6, 7, 8], cfg).kinds
    assert kinds == tuple(synth_clip(s, cfg).kind for s in range(3, 9)) and set(kinds) <= set(TRAJECTORIES)
