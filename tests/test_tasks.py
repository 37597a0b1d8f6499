import pytest
import torch

from raxels.cameras import Cameras, canonicalise, invert_rigid, relative_rotation_deg
from raxels.codec import PixelCodec
from raxels.data.batches import camera_images
from raxels.data.synthrooms import SynthRoomsConfig, synth_clip
from raxels.flow import sample
from raxels.model import build_model, model_config
from raxels.plucker import cameras_to_plucker, plucker_to_cameras
from raxels.tasks import (
    Pipeline,
    PipelineConfig,
    estimate_trajectory,
    generate_joint,
    generate_video,
    self_consistency,
    write_pipeline_config,
)
from tests.conftest import random_cameras


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    cfg = model_config("tiny", dim=64, heads=2, ffn_dim=128, num_layers=1, ray_dim=64, ray_heads=2, ray_ffn_dim=128)
    return Pipeline(build_model(cfg).eval(), PixelCodec(4), PipelineConfig(height=32, width=32))


@pytest.fixture(scope="module")
def clip():
    return synth_clip(3, SynthRoomsConfig(frames=6, height=32, width=32))


def test_estimate_returns_canonical_cameras(pipe, clip):
    cams, raxels = estimate_trajectory(pipe, clip.frames, steps=2, generator=torch.Generator().manual_seed(0))
    assert cams.c2w.shape == (1, 6, 4, 4) and raxels.shape == (1, 6, 3, 32, 32)
    assert (cams.height, cams.width) == (32, 32)


@pytest.fixture
def sampler_calls(monkeypatch):
    """Every call of the sampler from `raxels.tasks`: (video0, raxel0, sampled video latents)."""
    import raxels.tasks

    calls = []

    def spy(model, video0, raxel0, *args, **kwargs):
        out = sample(model, video0, raxel0, *args, **kwargs)
        calls.append((video0.clone(), raxel0.clone(), out[0].clone()))
        return out

    monkeypatch.setattr(raxels.tasks, "sample", spy)
    return calls


def test_estimate_splits_a_clip_longer_than_training_clips(pipe, monkeypatch):
    """An oracle in place of the sampler returns each subset's true raxels (canonical in the subset's own frame and
    scale), so the merged trajectory must be the clip's canonical one. (An untrained model's raxels decode to one
    repeated camera on some CPUs, which leaves nothing to merge.)"""
    import raxels.tasks

    clip = synth_clip(5, SynthRoomsConfig(frames=12, height=32, width=32))
    video = clip.frames[None].expand(2, -1, -1, -1, -1)  # 12 frames, B = 2
    latents = pipe.codec.encode_video(clip.frames[None])[0]  # [C, 12, h, w]
    seen = []

    def oracle(model, video0, raxel0, *args, **kwargs):
        rows = []
        for row in video0:
            idx = [next(j for j in range(12) if torch.equal(row[:, t], latents[:, j])) for t in range(row.shape[1])]
            cams = canonicalise(clip.cameras.frames(idx).to(torch.float64))[0]
            rows.append(pipe.codec.encode_raxels(camera_images(cams).float())[0])
        seen.append((video0.clone(), raxel0.clone()))
        return video0, torch.stack(rows)

    monkeypatch.setattr(raxels.tasks, "sample", oracle)
    cams, decoded = estimate_trajectory(pipe, video, 1, torch.Generator().manual_seed(0), window=4)
    # 12 frames in windows of 4: 4 subsets of 4 frames each ({0, 1, 5, 9}, {0, 2, 6, 10}, ...), one batch of 8.
    (v0, r0), = seen
    assert r0.shape[0] == 8 and r0.shape[2] == 4
    assert torch.equal(v0[2], pipe.codec.encode_video(video[:1, [0, 2, 6, 10]])[0])  # subset 1 of clip 0
    assert cams.c2w.shape == (2, 12, 4, 4) and decoded.shape == (2, 12, 3, 32, 32)
    truth = canonicalise(clip.cameras.to(torch.float64))[0]
    torch.testing.assert_close(cams.c2w[:, 0], torch.eye(4, dtype=cams.c2w.dtype).expand(2, 4, 4))
    assert torch.allclose(cams.centres.norm(dim=-1).amax(1), torch.ones(2, dtype=cams.c2w.dtype))
    assert relative_rotation_deg(cams.c2w[..., :3, :3], truth.c2w[..., :3, :3]).max() < 1.0
    # Centres to within the merge's interpolation of the first subset's path (0.08 here, on a forward clip).
    assert (cams.centres - truth.centres).norm(dim=-1).max() < 0.12
    # Long enough a window: the whole clip in one pass, as before.
    seen.clear()
    estimate_trajectory(pipe, video, 1, torch.Generator().manual_seed(0), window=12)
    assert seen[0][1].shape[0] == 2 and seen[0][1].shape[2] == 12


def test_generate_a_trajectory_longer_than_training_clips_in_windows(pipe, clip, sampler_calls):
    seen = sampler_calls
    cams = Cameras(clip.cameras.K[:, [0] * 10], clip.cameras.c2w[:, [0, 1, 2, 3, 4, 5, 4, 3, 2, 1]], 32, 32)
    video = generate_video(pipe, clip.frames[None, :1], cams, 1, torch.Generator().manual_seed(0), window=4)
    assert video.shape == (1, 10, 3, 32, 32)
    # 9 new frames in windows of at most 4, 3 new frames each: (0, 4), (3, 7), (6, 10).
    assert [s[0].shape[2] for s in seen] == [4, 4, 4]
    assert torch.allclose(video[0, 0], clip.frames[0], atol=1e-6)
    # Each later window starts from the frame the one before generated last.
    torch.testing.assert_close(seen[1][0][:, :, 0], seen[0][2][:, :, 3])
    torch.testing.assert_close(seen[2][0][:, :, 0], seen[1][2][:, :, 3])
    # Its cameras are relative to that frame's camera: the first raxel latent frame is the identity camera's.
    identity = Cameras(cams.K[:, :1].double(), torch.eye(4, dtype=torch.float64)[None, None], 32, 32)
    first = pipe.codec.encode_raxels(camera_images(identity).float())
    for s in seen[1:]:
        torch.testing.assert_close(s[1][:, :, :1], first, atol=1e-5, rtol=0)
    # ... at the whole trajectory's scale, not rescaled to a farthest centre at 1 per window.
    part = canonicalise(cams.to(torch.float64))[0].frames(slice(3, 7))
    rel = Cameras(part.K, invert_rigid(part.c2w[:, :1]) @ part.c2w, 32, 32)
    assert rel.centres.norm(dim=-1).max() < 0.9
    torch.testing.assert_close(seen[1][1], pipe.codec.encode_raxels(camera_images(rel).float()), atol=1e-5, rtol=0)
    # Long enough a window: one pass, as before.
    seen.clear()
    one = generate_video(pipe, clip.frames[None, :1], cams, 1, torch.Generator().manual_seed(0), window=10)
    assert len(seen) == 1 and one.shape == video.shape


def test_tasks_give_the_sampler_tensors_on_the_models_device(pipe, clip, monkeypatch):
    """The 'meta' device stands in for a GPU (this machine has none). Every latent and mask a task hands the sampler
    must be on the model's device, and what the tasks return must be on the CPU. Meta tensors hold no numbers, so
    the stand-in sampler returns CPU latents: blank frames and the clip's own cameras."""
    import copy

    import raxels.tasks

    meta = Pipeline(copy.deepcopy(pipe.model).to("meta"), pipe.codec, pipe.cfg)
    assert meta.device.type == "meta"
    canon, _ = canonicalise(clip.cameras.to(torch.float64))
    devices = []

    def stand_in(p, v0, r0, mask, *args):
        devices.append({t.device.type for t in (v0, r0, mask.video, mask.raxel)})
        cams = canon.frames(slice(0, r0.shape[2]))
        return torch.zeros(v0.shape), pipe.codec.encode_raxels(camera_images(cams).float())

    monkeypatch.setattr(raxels.tasks, "_run", stand_in)
    g = torch.Generator().manual_seed(0)
    cams, raxels_ = estimate_trajectory(meta, clip.frames, 1, g)
    video = generate_video(meta, clip.frames[:1], cams, 1, g)
    joint, jcams, _ = generate_joint(meta, clip.frames[:1], 4, 1, generator=g)
    assert devices == [{"meta"}] * 3
    assert {t.device.type for t in (cams.c2w, raxels_, video, joint, jcams.c2w)} == {"cpu"}


def test_generate_keeps_the_input_frame(pipe, clip):
    out = generate_video(pipe, clip.frames[None, :1], clip.cameras, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (1, 6, 3, 32, 32)
    assert torch.allclose(out[0, 0], clip.frames[0], atol=1e-6)  # the pixel codec is exact on given frames


def test_joint_with_and_without_intrinsics(pipe, clip):
    g = torch.Generator().manual_seed(0)
    v, cams, r = generate_joint(pipe, clip.frames[None, :1], 5, steps=2, generator=g)
    assert v.shape == (1, 5, 3, 32, 32) and cams.c2w.shape == (1, 5, 4, 4)
    v, cams, r = generate_joint(pipe, clip.frames[None, :1], 5, steps=2, K=clip.cameras.K[0, 0], generator=g)
    # The first camera was given clean (identity pose): it decodes back to the identity.
    assert relative_rotation_deg(cams.R[0, 0].double(), torch.eye(3, dtype=torch.float64)) < 0.5
    assert torch.allclose(cams.K[0, 0, 0, 0].double(), clip.cameras.K[0, 0, 0, 0].double(), rtol=1e-3)


def test_self_consistency_reports_metrics(pipe, clip):
    res = self_consistency(pipe, clip.frames, 1, 1, generator=torch.Generator().manual_seed(0))
    assert set(res["metrics"]) == {"psnr", "ssim", "pose_mean_rot_err_deg", "pose_RRA@15", "pose_AUC@30"}
    assert res["video_regenerated"].shape == (1, 6, 3, 32, 32)


def test_self_consistency_reuses_a_given_estimate(pipe, clip):
    full = self_consistency(pipe, clip.frames, 1, 1, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    est = estimate_trajectory(pipe, clip.frames, 1, g)
    reused = self_consistency(pipe, clip.frames, 1, 1, generator=g, estimate=est)
    assert reused["cameras"] is est[0]
    assert torch.equal(reused["video_regenerated"], full["video_regenerated"])
    assert reused["metrics"] == full["metrics"]


def test_bad_inputs(pipe, clip):
    with pytest.raises(ValueError, match="resize first"):
        estimate_trajectory(pipe, torch.zeros(4, 3, 16, 16))
    with pytest.raises(ValueError, match="NaN"):
        estimate_trajectory(pipe, torch.full((4, 3, 32, 32), float("nan")))
    with pytest.raises(ValueError, match="window"):
        estimate_trajectory(pipe, clip.frames, window=0)
    with pytest.raises(ValueError, match="input images"):
        generate_video(pipe, clip.frames[None], clip.cameras)


def test_pipeline_save_and_load(pipe, tmp_path):
    pipe.model.save_pretrained(tmp_path)
    write_pipeline_config(tmp_path, pipe.cfg)
    loaded = Pipeline.from_pretrained(tmp_path)
    assert loaded.cfg == pipe.cfg
    from raxels.errors import InputError

    with pytest.raises(InputError, match="not a raxels model folder"):
        Pipeline.from_pretrained(tmp_path / "nope")


def test_plucker_decoding_round_trip():
    cams = canonicalise(random_cameras(2, 4, 24, 32, seed=21))[0]
    est = plucker_to_cameras(cameras_to_plucker(cams))
    assert relative_rotation_deg(est.R, cams.R).max() < 0.01
    assert (est.centres - cams.centres).norm(dim=-1).max() < 1e-4


def test_bf16_inference(pipe, clip):
    video = clip.frames[None]
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.manual_seed(1)
    cfg = model_config("tiny", dim=64, heads=2, ffn_dim=128, num_layers=1, ray_dim=64, ray_heads=2, ray_ffn_dim=128)
    model = build_model(cfg).eval()
    torch.nn.init.normal_(model.raxel_io.proj_out.weight, std=0.05)  # zero at init: the output would skip the blocks
    fp32 = Pipeline(model, pipe.codec, pipe.cfg, "fp32")
    bf16 = Pipeline(model, pipe.codec, pipe.cfg, "bf16")
    _, r32 = estimate_trajectory(fp32, video, 2, g())
    _, r16 = estimate_trajectory(bf16, video, 2, g())
    assert r16.dtype == torch.float32
    # Same sampler noise, bf16 matmuls: close to fp32, and not bit-identical (autocast really ran).
    assert 0 < (r16 - r32).abs().max() < 0.05
