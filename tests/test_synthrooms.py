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


def _intersect_per_ray(o, d, room):
    """The slab test ray by ray ([R, 3] each, boxes by axes innermost): what `_intersect` computed before it was
    laid out by frame and axis, kept as the reference it must agree with to the bit."""
    inv = 1.0 / torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    t, axis = torch.maximum((room.lo - o) * inv, (room.hi - o) * inv).min(dim=-1)
    surf = axis * 2 + (d.gather(1, axis[:, None])[:, 0] > 0).long()
    if room.box_lo.shape[0]:
        t1 = (room.box_lo[None] - o[:, None]) * inv[:, None]
        t2 = (room.box_hi[None] - o[:, None]) * inv[:, None]
        tn, ax_n = torch.minimum(t1, t2).max(dim=-1)
        tf = torch.maximum(t1, t2).min(dim=-1).values
        tn = torch.where((tn <= tf) & (tn > 1e-6), tn, torch.full_like(tn, float("inf")))
        tb, idx = tn.min(dim=-1)
        closer = tb < t
        ax_b = ax_n.gather(1, idx[:, None])[:, 0]
        side = (d.gather(1, ax_b[:, None])[:, 0] < 0).long()
        t = torch.where(closer, tb, t)
        surf = torch.where(closer, 6 + idx * 6 + ax_b * 2 + side, surf)
        axis = torch.where(closer, ax_b, axis)
    return t, surf, axis


@pytest.mark.parametrize("seed", [0, 7, 21])
def test_intersection_by_frame_is_the_per_ray_slab_test(seed):
    import numpy as np

    from raxels.data.synthrooms import _intersect

    rng = np.random.default_rng(seed)
    room = make_room(rng, SynthRoomsConfig())
    assert room.box_lo.shape[0] > 0  # the furniture branch is exercised
    g = torch.Generator().manual_seed(seed)
    centres = (torch.rand(5, 3, generator=g, dtype=torch.float64) - 0.5) * torch.tensor([2.0, 0.4, 2.0]).double()
    d = torch.randn(5, 300, 3, generator=g, dtype=torch.float64)
    d[:, :20, 0] = 0.0  # rays parallel to a face
    d = d / d.norm(dim=-1, keepdim=True)
    got = _intersect(centres, d.permute(2, 0, 1).contiguous(), room)
    want = _intersect_per_ray(centres[:, None].expand_as(d).reshape(-1, 3), d.reshape(-1, 3), room)
    hits_box = (want[1] >= 6).sum()
    assert hits_box > 0 and hits_box < want[1].numel()
    for a, b in zip(got, want):
        assert a.shape == (5, 300) and torch.equal(a.reshape(-1), b)


def _shade_per_ray(p, surf, axis, t, tex):
    """Shading ray by ray ([R, 3] points, the face normal's Lambert term by a matrix product): what `_shade` computed
    before it was laid out component by component, kept as the reference it must agree with to the bit."""
    from raxels.data.synthrooms import _LIGHT

    prm = tex[surf]
    a1 = torch.where(axis == 0, p[:, 2], p[:, 0])
    a2 = torch.where(axis == 1, p[:, 2], p[:, 1])
    fa, fb, cs = prm[:, 6], prm[:, 7], prm[:, 8]
    checker = (torch.floor(a1 / cs) + torch.floor(a2 / cs)) % 2
    wave = 0.5 + 0.5 * torch.sin(fa * a1 * 2.1 + fb * a2 * 1.7 + surf.double())
    mix = (0.55 * checker + 0.45 * wave)[:, None]
    albedo = prm[:, :3] * (1 - mix) + prm[:, 3:6] * mix
    normal = torch.zeros_like(p)
    normal.scatter_(1, axis[:, None], 1.0)
    lam = (normal @ (_LIGHT / _LIGHT.norm())).abs()
    return (albedo * (0.65 + 0.6 * lam[:, None]) * torch.exp(-0.06 * t)[:, None]).clamp(0, 1)


def test_shading_by_component_is_the_per_ray_shading():
    import numpy as np

    from raxels.data.synthrooms import _shade

    room = make_room(np.random.default_rng(3), SynthRoomsConfig())
    g = torch.Generator().manual_seed(3)
    R = 4096
    p = (torch.rand(R, 3, generator=g, dtype=torch.float64) - 0.5) * 8
    surf = torch.randint(0, room.tex.shape[0], (R,), generator=g)
    axis = torch.randint(0, 3, (R,), generator=g)
    t = torch.rand(R, generator=g, dtype=torch.float64) * 6
    got = _shade(p.T.contiguous(), surf, axis, t, room.tex)
    assert got.shape == (3, R) and torch.equal(got.T, _shade_per_ray(p, surf, axis, t, room.tex))


def test_frames_keep_channels_innermost_in_memory():
    # Training compiles its graphs for the batch's strides: another layout would build other graphs, other roundings.
    frames = synth_clip(4, SynthRoomsConfig(frames=3, height=16, width=16)).frames
    assert frames.shape == (3, 3, 16, 16) and frames.permute(0, 2, 3, 1).is_contiguous()
