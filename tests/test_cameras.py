import math

import pytest
import torch

from raxels.cameras import (
    Cameras,
    canonicalise,
    invert_rigid,
    make_cameras,
    matrix_to_quaternion,
    opencv_to_opengl_c2w,
    opengl_to_opencv_c2w,
    project_to_rotation,
    quaternion_to_matrix,
    relative_rotation_deg,
    rt_to_matrix,
    uncanonicalise,
    validate,
)
from tests.conftest import random_cameras


def test_canonicalise_first_identity_and_unit_extent():
    cams = random_cameras(4, 10, 32, 32, seed=1)
    canon, frame = canonicalise(cams)
    eye = torch.eye(4, dtype=canon.c2w.dtype).expand(4, 4, 4)
    assert torch.allclose(canon.c2w[:, 0], eye, atol=1e-12)
    dist = canon.centres.norm(dim=-1).amax(dim=1)
    assert torch.allclose(dist, torch.ones(4, dtype=dist.dtype), atol=1e-12)
    validate(canon)
    back = uncanonicalise(canon, frame)
    assert torch.allclose(back.c2w, cams.c2w, atol=1e-10)


def test_canonicalise_pure_rotation_keeps_scale_one():
    cams = random_cameras(1, 5, 32, 32)
    cams.c2w[..., :3, 3] = 2.0  # every camera at the same centre
    canon, frame = canonicalise(cams)
    assert frame.scale.item() == 1.0
    assert canon.centres.abs().max() < 1e-12


def test_invert_rigid_matches_inverse():
    M = random_cameras(2, 3, 8, 8).c2w
    assert torch.allclose(invert_rigid(M), torch.linalg.inv(M), atol=1e-12)


def test_quaternion_round_trip_including_180_degrees():
    R = project_to_rotation(torch.randn(200, 3, 3, dtype=torch.float64))
    R = torch.cat([R, torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))[None]])
    q = matrix_to_quaternion(R)
    assert (q[:, 0] >= 0).all()
    assert torch.allclose(quaternion_to_matrix(q), R, atol=1e-12)


def test_relative_rotation_is_precise_for_tiny_angles():
    a = math.radians(0.001)
    Rz = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]], dtype=torch.float32)
    assert abs(relative_rotation_deg(torch.eye(3), Rz).item() - 0.001) < 1e-5


def test_opengl_opencv_round_trip():
    M = random_cameras(1, 4, 8, 8).c2w
    gl = opencv_to_opengl_c2w(M)
    assert torch.allclose(gl[..., :3, 0], M[..., :3, 0]) and torch.allclose(gl[..., :3, 2], -M[..., :3, 2])
    assert torch.allclose(opengl_to_opencv_c2w(gl), M)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda K, M: M.__setitem__((0, 2, 0, 3), float("nan")), "non-finite"),
        (lambda K, M: K.__setitem__((0, 1, 0, 0), float("inf")), "non-finite"),
        (lambda K, M: M.__setitem__((0, 1, 0, 0), 1.5), "not a proper rotation"),
        (lambda K, M: M.__setitem__((0, 0, slice(0, 3), 0), -M[0, 0, :3, 0]), "not a proper rotation"),
        (lambda K, M: K.__setitem__((0, 0, 0, 0), -5.0), "focal length must be positive"),
    ],
)
def test_validate_rejects_bad_cameras(mutate, message):
    cams = random_cameras(1, 3, 16, 16)
    K, M = cams.K.clone(), cams.c2w.clone()
    mutate(K, M)
    with pytest.raises(ValueError, match=message) as e:
        make_cameras(K, M, 16, 16, name="traj.txt")
    assert "traj.txt" in str(e.value) and "\n" not in str(e.value)


def test_validate_rejects_shape_mismatch():
    cams = random_cameras(1, 3, 16, 16)
    with pytest.raises(ValueError, match="cameras"):
        validate(Cameras(cams.K[:, :2], cams.c2w, 16, 16))


def test_resized_scales_intrinsics():
    cams = random_cameras(1, 2, 32, 64)
    small = cams.resized(16, 32)
    assert torch.allclose(small.K[..., :2, :], cams.K[..., :2, :] / 2)
    assert torch.equal(rt_to_matrix(small.R, small.centres), cams.c2w)
