import torch

from raxels.cameras import Cameras, canonicalise, intrinsics, project_to_rotation, relative_rotation_deg, rt_to_matrix
from raxels.data.realestate10k import load_re10k_clip
from raxels.plucker import cameras_to_plucker
from raxels.raxels import cameras_to_raxels, raxels_to_cameras, ray_directions
from tests.conftest import random_cameras


def _errors(est, gt):
    rot = relative_rotation_deg(est.R.double(), gt.R.double())
    cen = (est.centres.double() - gt.centres.double()).norm(dim=-1)
    foc = ((est.K[..., 0, 0] - gt.K[..., 0, 0]) / gt.K[..., 0, 0]).abs()
    focy = ((est.K[..., 1, 1] - gt.K[..., 1, 1]) / gt.K[..., 1, 1]).abs()
    pp = (est.K[..., :2, 2] - gt.K[..., :2, 2]).abs().amax(-1)
    return rot, cen, torch.maximum(foc, focy), pp


def test_raxels_are_in_range_and_first_frame_is_pure_direction(canonical_random_cameras):
    r = cameras_to_raxels(canonical_random_cameras)
    assert r.shape == (3, 8, 3, 48, 64)
    assert r.abs().max() <= 1.0 + 1e-9
    # Frame 0 is the identity camera: the raxel is the unit direction / 2.
    assert torch.allclose(r[:, 0].norm(dim=1), torch.full((3, 48, 64), 0.5, dtype=r.dtype))


def test_noise_free_round_trip_random_cameras(canonical_random_cameras):
    cams = canonical_random_cameras
    est = raxels_to_cameras(cameras_to_raxels(cams))
    rot, cen, foc, pp = _errors(est, cams)
    assert rot.max() < 0.01 and cen.max() < 1e-4 and foc.max() < 1e-4 and pp.max() < 1e-3
    assert est.K.shape == cams.K.shape and (est.height, est.width) == (48, 64)


def test_noise_free_round_trip_float32():
    cams = canonicalise(random_cameras(2, 6, 32, 32, seed=3, dtype=torch.float32))[0]
    rot, cen, foc, _ = _errors(raxels_to_cameras(cameras_to_raxels(cams)), cams)
    assert rot.max() < 0.01 and cen.max() < 1e-4 and foc.max() < 1e-4


def test_round_trip_all_real_re10k_clips(re10k_pairs):
    for vid, pose in re10k_pairs:
        clip = load_re10k_clip(vid, pose, size=(64, 96))
        cams = canonicalise(clip.cameras.to(torch.float64))[0]
        rot, cen, foc, _ = _errors(raxels_to_cameras(cameras_to_raxels(cams)), cams)
        assert rot.max() < 0.01 and cen.max() < 1e-4 and foc.max() < 1e-4, vid.name


def test_noisy_raxels_median_rotation_error_below_one_degree():
    cams = canonicalise(random_cameras(4, 16, 64, 64, seed=5))[0]
    r = cameras_to_raxels(cams)
    g = torch.Generator().manual_seed(0)
    rot, cen, foc, _ = _errors(raxels_to_cameras(r + 0.02 * torch.randn(r.shape, generator=g, dtype=r.dtype)), cams)
    assert rot.median() < 1.0
    assert cen.median() < 0.05 and foc.median() < 0.05


def test_outlier_pixels_do_not_break_decoding():
    cams = canonicalise(random_cameras(1, 4, 32, 32, seed=7))[0]
    r = cameras_to_raxels(cams).clone()
    r[..., :4, :] = 0.9  # a block of corrupted pixels, as a codec artefact might give
    rot, cen, _, _ = _errors(raxels_to_cameras(r), cams)
    assert rot.median() < 1.0


def test_batched_decoding_equals_per_frame_decoding():
    cams = canonicalise(random_cameras(2, 3, 24, 24, seed=9))[0]
    r = cameras_to_raxels(cams)
    r = r + 0.01 * torch.randn(r.shape, generator=torch.Generator().manual_seed(1), dtype=r.dtype)
    full = raxels_to_cameras(r)
    one = raxels_to_cameras(r[1:2, 2:3])
    assert torch.allclose(full.c2w[1, 2], one.c2w[0, 0], atol=1e-9)


def test_decoding_rejects_bad_input():
    import pytest

    with pytest.raises(ValueError, match="B,F,3,H,W"):
        raxels_to_cameras(torch.zeros(2, 3, 8, 8))
    with pytest.raises(ValueError, match="NaN"):
        raxels_to_cameras(torch.full((1, 1, 3, 8, 8), float("nan")))
    one_bad = torch.zeros(1, 2, 3, 8, 8)
    one_bad[0, 1, 2, 5, 5] = float("inf")  # a single pixel of one frame
    with pytest.raises(ValueError, match="NaN or inf"):
        raxels_to_cameras(one_bad)
    with pytest.raises(ValueError, match="no raxel images"):
        raxels_to_cameras(torch.zeros(1, 0, 3, 8, 8))


def test_decoding_chunks_match_one_pass():
    # More frames than one decoding chunk: chunked results equal decoding each chunk on its own.
    from raxels import raxels as rx

    g = torch.Generator().manual_seed(3)
    R = project_to_rotation(torch.randn(1, rx.DECODE_CHUNK + 5, 3, 3, generator=g, dtype=torch.float64))
    f = torch.full((1, R.shape[1]), 20.0, dtype=torch.float64)
    K = intrinsics(f, f, torch.full_like(f, 8.0), torch.full_like(f, 8.0))
    t = 0.3 * torch.randn(1, R.shape[1], 3, generator=g, dtype=torch.float64)
    cams = Cameras(K, rt_to_matrix(R, t), 16, 16)
    r = cameras_to_raxels(cams)
    est = raxels_to_cameras(r, intrinsics_model="shared")
    tail = raxels_to_cameras(r[:, rx.DECODE_CHUNK :], intrinsics_model="centred")
    assert relative_rotation_deg(est.R, cams.R).max() < 1e-4
    assert torch.allclose(est.c2w[:, rx.DECODE_CHUNK :], tail.c2w, atol=1e-6)


def test_plucker_is_direction_and_moment(canonical_random_cameras):
    cams = canonical_random_cameras
    p = cameras_to_plucker(cams)
    assert p.shape == (3, 8, 6, 48, 64)
    d, m = p[:, :, :3], p[:, :, 3:]
    assert torch.allclose(d.norm(dim=2), torch.ones_like(d[:, :, 0]))
    assert (d * m).sum(2).abs().max() < 1e-9  # the moment is orthogonal to the direction
    # The moment is the same for any point on the ray: o + 2d gives the same o x d.
    dirs = ray_directions(cams).permute(0, 1, 4, 2, 3)
    o2 = cams.centres[..., None, None] + 2 * dirs
    assert torch.allclose(torch.cross(o2, d, dim=2), m, atol=1e-9)


def _centred_cameras(seed: int, size: int = 32):
    """Random canonical cameras whose principal point is the image centre and whose focal length is one per clip."""
    from raxels.cameras import Cameras, intrinsics

    cams = canonicalise(random_cameras(4, 8, size, size, seed=seed))[0]
    f = cams.K[:, :1, 0, 0].expand(-1, 8)
    K = intrinsics(f, f, torch.full_like(f, size / 2), torch.full_like(f, size / 2))
    return Cameras(K, cams.c2w, size, size)


def test_intrinsics_priors_are_exact_without_noise_and_steadier_with_noise():
    import pytest

    cams = _centred_cameras(11)
    r = cameras_to_raxels(cams)
    noisy = r + 0.03 * torch.randn(r.shape, generator=torch.Generator().manual_seed(2), dtype=r.dtype)
    rot_err = {}
    for model in ("centred", "shared"):
        rot, cen, foc, pp = _errors(raxels_to_cameras(r, intrinsics_model=model), cams)
        assert rot.max() < 0.01 and cen.max() < 1e-4 and foc.max() < 1e-4 and pp.max() < 1e-6, model
    for model in ("free", "centred", "shared"):
        est = raxels_to_cameras(noisy, intrinsics_model=model)
        rot_err[model] = _errors(est, cams)[0].mean()
        if model == "shared":  # one focal length per clip
            assert torch.allclose(est.K[:, :1, 0, 0].expand(-1, 8), est.K[..., 0, 0])
    # The priors hold here, so they can only help: fewer unknowns to trade off against the rotation.
    assert rot_err["centred"] < rot_err["free"] and rot_err["shared"] <= rot_err["centred"] * 1.05, rot_err
    with pytest.raises(ValueError, match="intrinsics_model"):
        raxels_to_cameras(r, intrinsics_model="guess")
    with pytest.raises(ValueError, match="refine_iters"):
        raxels_to_cameras(r, refine_iters=0, intrinsics_model="centred")
