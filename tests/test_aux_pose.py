import math

import torch

from raxels.aux_pose import CENTRE_SPREAD, ROTATION_SPREAD, pose_loss, pose_targets


def _yaw_c2w(deg: float, centre: tuple[float, float, float]) -> torch.Tensor:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    M = torch.eye(4, dtype=torch.float64)
    M[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
    M[:3, 3] = torch.tensor(centre, dtype=torch.float64)
    return M


def test_targets_are_whitened_6d_rotation_and_centre():
    c2w = torch.stack([torch.eye(4, dtype=torch.float64), _yaw_c2w(20.0, (0.24, 0.0, -0.48))])[None]
    y = pose_targets(c2w)
    assert y.shape == (1, 2, 9)
    assert torch.equal(y[0, 0], torch.zeros(9, dtype=torch.float64))  # the canonical first camera
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    first_col, second_col = torch.tensor([c - 1, 0, -s]), torch.zeros(3)
    assert torch.allclose(y[0, 1, :3].float(), first_col / ROTATION_SPREAD, atol=1e-6)
    assert torch.allclose(y[0, 1, 3:6].float(), second_col / ROTATION_SPREAD, atol=1e-6)
    assert torch.allclose(y[0, 1, 6:].float(), torch.tensor([0.24, 0.0, -0.48]) / CENTRE_SPREAD, atol=1e-6)


def test_loss_counts_only_noised_cameras_of_samples_whose_video_is_given():
    target = torch.zeros(3, 2, 9)
    pred = torch.ones(3, 2, 9)
    noised = torch.tensor([[True, True], [False, False], [True, False]])
    t = torch.tensor([0.5, 1.0, 1.0])
    # Sample 0: pose estimation at t = 0.5; sample 1: cameras given (camera control); sample 2: joint, half the video.
    clean_video = torch.tensor([1.0, 1.0, 0.5])
    loss = pose_loss(pred, target, noised, t, clean_video)
    expected = (0.5 * 1.0 + 0.0 + (1.0 * 0.5) / 2) / 3
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)
    assert pose_loss(pred, target, noised, torch.zeros(3), clean_video).item() == 0.0
    assert pose_loss(pred, target, noised, t, torch.zeros(3)).item() == 0.0


def test_centre_weight_scales_only_the_centre_errors():
    target = torch.zeros(1, 1, 9)
    rot_err, centre_err = target.clone(), target.clone()
    rot_err[..., :6], centre_err[..., 6:] = 1.0, 1.0

    def loss(pred, **kw):
        return pose_loss(pred, target, torch.ones(1, 1, dtype=torch.bool), torch.ones(1), torch.ones(1), **kw).item()

    assert math.isclose(loss(rot_err, centre_weight=8.0), 6 / 9, rel_tol=1e-6)
    assert math.isclose(loss(centre_err, centre_weight=8.0), 8 * 3 / 9, rel_tol=1e-6)
    assert math.isclose(loss(centre_err), 3 / 9, rel_tol=1e-6)
