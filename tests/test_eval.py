import math

import pytest
import torch

from raxels.cameras import canonicalise, project_to_rotation, rt_to_matrix
from raxels.data.synthrooms import SynthRoomsConfig, synth_clip
from raxels.eval.baselines import colmap_database, colmap_map, colmap_poses, opencv_chain_poses
from raxels.eval.pose import ate, camera_control_errors, pose_metrics, relative_pose_errors
from raxels.eval.synthrooms import metrics_by_kind
from raxels.eval.video import fid, psnr, ssim
from tests.conftest import random_cameras


def test_perfect_poses_score_perfectly_and_are_similarity_invariant():
    c2w = canonicalise(random_cameras(2, 6, 16, 16, seed=4))[0].c2w
    m = pose_metrics(c2w, c2w)
    assert m["RRA@15"] == m["RTA@15"] == m["AUC@30"] == 1.0 and m["pairs"] == 2 * 15
    # A global similarity transform (rotation, translation, scale) changes no relative-pose metric.
    S = rt_to_matrix(project_to_rotation(torch.randn(3, 3, dtype=torch.float64)), torch.randn(3, dtype=torch.float64))
    moved = S @ c2w
    moved[..., :3, 3] *= 3.0
    assert pose_metrics(moved, c2w)["AUC@30"] == pytest.approx(1.0)
    assert ate(moved[0, :, :3, 3], c2w[0, :, :3, 3]) < 1e-9


def test_rotation_errors_are_measured():
    c2w = canonicalise(random_cameras(1, 3, 16, 16, seed=5))[0].c2w
    bad = c2w.clone()
    a = math.radians(20)
    Rz = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]], dtype=torch.float64)
    bad[0, 2, :3, :3] = bad[0, 2, :3, :3] @ Rz
    rot, _ = relative_pose_errors(bad, c2w)
    assert rot[0].tolist() == pytest.approx([0.0, 20.0, 20.0], abs=1e-6)  # pairs (0,1), (0,2), (1,2)
    assert pose_metrics(bad, c2w)["RRA@15"] == pytest.approx(1 / 3)


def test_metrics_split_by_trajectory_kind():
    c2w = canonicalise(random_cameras(3, 5, 16, 16, seed=6))[0].c2w
    bad = c2w.clone()
    bad[1, 1:, :3, 3] = -bad[1, 1:, :3, 3].flip(-1)  # clip 1's centres moved: its translation directions break
    m = metrics_by_kind(bad, c2w, ["pan", "strafe", "pan"])
    assert set(m) == {"pan", "strafe"} and m["pan"]["clips"] == 2 and m["strafe"]["clips"] == 1
    assert m["pan"]["AUC@30"] == m["pan"]["RTA@15"] == 1.0 and m["pan"]["RRA@15"] == 1.0
    assert m["strafe"]["RRA@15"] == 1.0 and m["strafe"]["RTA@15"] < 1.0 and m["strafe"]["AUC@30"] < 1.0


def test_ate_agrees_with_evo():
    from evo.core import metrics
    from evo.core.trajectory import PosePath3D

    g = torch.Generator().manual_seed(0)
    gt = canonicalise(random_cameras(1, 20, 8, 8, seed=6))[0].c2w[0]
    est = gt.clone()
    est[:, :3, 3] = 2.5 * gt[:, :3, 3] + 0.05 * torch.randn(20, 3, generator=g, dtype=torch.float64) + 1.0
    ref_path = PosePath3D(poses_se3=[m.numpy() for m in gt])
    est_path = PosePath3D(poses_se3=[m.numpy() for m in est])
    est_path.align(ref_path, correct_scale=True)
    ape = metrics.APE(metrics.PoseRelation.translation_part)
    ape.process_data((ref_path, est_path))
    assert ate(est[:, :3, 3], gt[:, :3, 3]) == pytest.approx(ape.get_statistic(metrics.StatisticsType.rmse), rel=1e-6)


def test_camera_control_error_zero_for_same_trajectory_up_to_scale():
    c2w = canonicalise(random_cameras(1, 5, 8, 8, seed=7))[0].c2w[0]
    scaled = c2w.clone()
    scaled[:, :3, 3] *= 0.3
    rot, trans = camera_control_errors(scaled, c2w)
    assert rot < 1e-6 and trans < 1e-9


def test_video_metrics():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    assert psnr(a, a) > 90 and ssim(a, a) == pytest.approx(1.0, abs=1e-4)
    noisy = (a + 0.1 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    noisier = (a + 0.4 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    assert 20 < psnr(noisy, a) < 30 and psnr(noisier, a) < psnr(noisy, a)
    assert ssim(noisier, a) < ssim(noisy, a) < 0.99
    b = torch.rand(16, 3, 32, 32, generator=g) * 2 - 1
    assert fid(a.repeat(4, 1, 1, 1), b) > fid(a.repeat(4, 1, 1, 1), a.repeat(4, 1, 1, 1)) - 1e-6


def test_baselines_pose_a_synthrooms_clip():
    # A strafe, on which COLMAP finds its initial pair after one relaxation of its constraints (AUC@30 0.886 here).
    # The forward clip used before needed three, and failed in CI while the extractor's threads still numbered the
    # images. COLMAP runs its mapper on one thread by default: the same reconstruction on every run, so a pass here
    # should be a pass in CI.
    clip = synth_clip(1_000_006, SynthRoomsConfig(frames=8, height=128, width=128))
    K = clip.cameras.K[0, 0]
    gt = clip.cameras.c2w.double()
    metrics = {}
    for name, c2w in (
        ("colmap", colmap_poses(clip.frames, K)),
        ("opencv", opencv_chain_poses(clip.frames, K)),
    ):
        assert c2w is not None, name
        metrics[name] = pose_metrics(c2w[None], gt)
        assert metrics[name]["RRA@15"] > 0.9, name
    assert metrics["colmap"]["AUC@30"] > 0.6


def test_colmap_images_get_ids_in_frame_order(tmp_path):
    import pycolmap

    clip = synth_clip(1_000_001, SynthRoomsConfig(frames=8, height=64, width=64))
    colmap_database(clip.frames, clip.cameras.K[0, 0], tmp_path)  # extraction on two threads, as colmap_poses runs it
    db = pycolmap.Database.open(tmp_path / "db.db")
    images = {im.image_id: im.name for im in db.read_all_images()}
    assert images == {i + 1: f"{i:04d}.png" for i in range(8)}
    assert db.num_cameras() == 1 and db.num_frames() == 8
    assert all(db.num_keypoints_for_image(i + 1) > 0 for i in range(8))
    db.close()


def _colmap_tables(db_path) -> dict:
    import sqlite3

    with sqlite3.connect(db_path) as db:
        return {
            t: db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
            for t in ("cameras", "images", "keypoints", "descriptors", "matches", "two_view_geometries")
        }


def test_colmap_baseline_is_repeatable(tmp_path):
    # Stage by stage, with the defaults the eval runs, so that a failure names the stage that did not repeat. CI once
    # saw the poses differ while matching ran on two threads; here, pausing the process at random as a CPU quota
    # does, two matching threads gave other matches 1 run in 800, one thread none in 2400.
    clip = synth_clip(1_000_001, SynthRoomsConfig(frames=6, height=96, width=96))
    K = clip.cameras.K[0, 0]
    for run in ("a", "b"):
        colmap_database(clip.frames, K, tmp_path / run)
    a, b = (_colmap_tables(tmp_path / run / "db.db") for run in ("a", "b"))
    assert a["two_view_geometries"], "no verified matches"
    assert [t for t in a if a[t] != b[t]] == [], "COLMAP's features or matches differ between two runs"
    poses = [colmap_map(tmp_path / run, 6, K) for run in ("a", "a", "b")]
    assert poses[0] is not None
    assert torch.equal(poses[0], poses[1]), "COLMAP's mapper gave other poses from the same database"
    assert torch.equal(poses[0], poses[2])
    assert torch.equal(poses[0], colmap_poses(clip.frames, K))


def test_baselines_report_failure_on_featureless_frames():
    flat = torch.zeros(4, 3, 64, 64)
    K = torch.tensor([[50.0, 0, 32], [0, 50.0, 32], [0, 0, 1]])
    assert opencv_chain_poses(flat, K) is None
    assert colmap_poses(flat, K) is None


def test_harness_runs_methods_side_by_side(re10k_pairs):
    from raxels.codec import PixelCodec
    from raxels.eval.harness import evaluate_generation, evaluate_poses, model_method, re10k_clips, synthrooms_clips
    from raxels.model import build_model, model_config
    from raxels.tasks import Pipeline, PipelineConfig

    torch.manual_seed(0)
    cfg = model_config("tiny", dim=32, heads=2, ffn_dim=64, num_layers=1, ray_dim=32, ray_heads=2, ray_ffn_dim=64)
    pipe = Pipeline(build_model(cfg).eval(), PixelCodec(4), PipelineConfig(height=32, width=32))
    clips = {"synthrooms": list(synthrooms_clips(1)), "re10k": list(re10k_clips())[:1]}
    methods = {
        "model": model_method(pipe),
        "opencv": lambda c: opencv_chain_poses(c.frames, c.cameras.K[0, 0]),
        "always-fails": lambda c: None,
    }
    rows = evaluate_poses(methods, clips)
    assert len(rows) == 2 * 2 * 3
    for r in rows:
        assert r["clips"] == 1 and r["s_per_clip"] >= 0
        if r["method"] == "always-fails":
            assert r["fail_rate"] == 1.0 and "RRA@15" not in r
        if r["method"] == "opencv" and r["dataset"] == "synthrooms" and r["frames"] == "dense":
            assert r["fail_rate"] == 0.0 and r["RRA@15"] > 0.9
    gen = evaluate_generation(pipe, clips["synthrooms"], steps=1, frames=4)
    assert set(gen) >= {"PSNR", "SSIM", "FID", "RotErr", "TransErr"}
    if gen["camera_control_failures"] == gen["clips"]:
        assert gen["RotErr"] is None and gen["TransErr"] is None


def test_flow_estimator_poses_small_smooth_frames():
    """Dense-flow chaining (the camera-control estimator) poses a 32 x 32 clip upscaled 4x, where SIFT may not."""
    import torch.nn.functional as F

    from raxels.eval.baselines import opencv_flow_poses

    clip = synth_clip(1_000_005, SynthRoomsConfig(frames=8, height=32, width=32))
    up = F.interpolate(clip.frames, scale_factor=4, mode="bicubic").clamp(-1, 1)
    K = clip.cameras.K[0, 0].double() * torch.tensor([[4.0], [4.0], [1.0]], dtype=torch.float64)
    c2w = opencv_flow_poses(up, K)
    assert c2w is not None and c2w.shape == (8, 4, 4)
    assert pose_metrics(c2w[None], clip.cameras.c2w.double())["RRA@15"] > 0.9
    assert opencv_flow_poses(torch.zeros(4, 3, 64, 64), K) is None
