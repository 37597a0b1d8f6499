import pytest
import torch

from raxels.model import CONFIGS, RaxelsDiT, build_model, count_parameters, model_config


@pytest.mark.parametrize("name, lo, hi", [("tiny", 1e6, 20e6), ("wan-1.3b", 1.3e9, 2.0e9), ("wan-14b", 19.5e9, 20.5e9)])
def test_parameter_counts_on_meta_device(name, lo, hi):
    m = build_model(model_config(name), "meta")
    n = count_parameters(m)
    assert lo <= n <= hi, n
    if name == "wan-14b":
        video = sum(p.numel() for k, p in m.named_parameters() if ".raxel." not in k and not k.startswith("raxel_io"))
        assert 13e9 < video < 15e9  # the Wan 2.1 14B video stream; the rest is the ray branch


def _small(**kw):
    torch.manual_seed(0)
    cfg = model_config(
        "tiny", dim=64, heads=2, ffn_dim=128, num_layers=2, ray_dim=32, ray_heads=2, ray_ffn_dim=64, **kw
    )
    m = build_model(cfg)
    for p in m.parameters():  # the output layer starts at zero; give it weights so outputs depend on inputs
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.02)
    return m


def test_forward_shapes_with_different_grids():
    m = _small()
    v, r = torch.randn(2, 48, 3, 8, 8), torch.randn(2, 48, 9, 4, 4)  # compressed video grid vs per-camera grid
    pv, pr = m(v, r, torch.rand(2), torch.rand(2, 9))
    assert pv.shape == v.shape and pr.shape == r.shape


def test_per_token_timesteps_change_only_what_they_should():
    m = _small().eval()
    v, r = torch.randn(1, 48, 4, 8, 8), torch.randn(1, 48, 4, 8, 8)
    tv = torch.full((1, 4), 0.5)
    base = m(v, r, tv, tv)
    tv2 = tv.clone()
    tv2[0, 2] = 0.0  # one frame becomes clean
    alt = m(v, r, tv2, tv)
    assert not torch.allclose(base[0], alt[0])
    # Per-token form equals per-frame form, bit for bit: per frame, the modulation is computed once for each frame's
    # tokens and broadcast over them (`dit.modulate`); per token, once for every token.
    tok = tv2[:, :, None].expand(1, 4, 16).reshape(1, -1)
    same = m(v, r, tok, tv)
    assert torch.equal(same[0], alt[0]) and torch.equal(same[1], alt[1])
    per_sample = m(v, r, torch.full((1,), 0.5), torch.full((1,), 0.5))
    assert torch.equal(per_sample[0], base[0]) and torch.equal(per_sample[1], base[1])
    with pytest.raises(ValueError, match="timesteps"):
        m(v, r, torch.rand(1, 3), tv)


def test_streams_exchange_information():
    """Video output depends on raxel input and vice versa (the cross-attention is wired)."""
    m = _small().eval()
    v, r, t = torch.randn(1, 48, 2, 8, 8), torch.randn(1, 48, 2, 8, 8), torch.rand(1)
    a = m(v, r, t, t)
    b = m(v, r + 1.0, t, t)
    c = m(v + 1.0, r, t, t)
    assert not torch.allclose(a[0], b[0]) and not torch.allclose(a[1], c[1])


def test_gradients_reach_both_streams():
    m = _small()
    pv, pr = m(torch.randn(1, 48, 2, 8, 8), torch.randn(1, 48, 2, 8, 8), torch.rand(1), torch.rand(1))
    (pv.square().mean() + pr.square().mean()).backward()
    for name in (
        "blocks.0.video.attn1.to_q.weight",
        "blocks.0.raxel.attn2.to_k.weight",
        "raxel_io.patch_embedding.weight",
    ):
        assert dict(m.named_parameters())[name].grad.abs().sum() > 0, name


def test_save_and_load_pretrained(tmp_path):
    m = _small().eval()
    m.save_pretrained(tmp_path / "m")
    m2 = RaxelsDiT.from_pretrained(tmp_path / "m").eval()
    x = (torch.randn(1, 48, 2, 8, 8), torch.randn(1, 48, 2, 8, 8), torch.rand(1), torch.rand(1))
    assert torch.equal(m(*x)[0], m2(*x)[0])


def test_pose_head_reads_both_streams_and_survives_save_load(tmp_path):
    m = _small(pose_head=True)
    x = (torch.randn(2, 48, 3, 8, 8), torch.randn(2, 48, 3, 8, 8), torch.rand(2), torch.rand(2))
    pv, pr, pose = m(*x, return_pose=True)
    assert pose.shape == (2, 3, 9) and pr.shape == x[1].shape
    # The auxiliary loss is there to make the raxel stream read the video: its gradient must reach the video side.
    pose.square().mean().backward()
    for name in ("video_io.patch_embedding.weight", "blocks.0.raxel.attn2.to_k.weight", "pose_readout.1.weight"):
        assert dict(m.named_parameters())[name].grad.abs().sum() > 0, name
    m.eval().save_pretrained(tmp_path / "m")
    m2 = RaxelsDiT.from_pretrained(tmp_path / "m").eval()
    assert torch.equal(m(*x, return_pose=True)[2], m2(*x, return_pose=True)[2])
    assert torch.equal(m(*x)[1], m2(*x)[1])  # inference never needs the head
    with pytest.raises(ValueError, match="pose_head"):
        _small()(*x, return_pose=True)


def test_pose_head_without_norm_sees_the_scale_of_the_pooled_state(tmp_path):
    # Why the option exists: behind a LayerNorm the pose loss is blind to the pooled state's scale
    # (docs/experiments.md, "Why translations fail").
    normed, plain = _small(pose_head=True), _small(pose_head=True, pose_head_norm=False)
    assert plain.state_dict().keys() == normed.state_dict().keys()
    pooled = torch.randn(3, 32)
    for head, scale_matters in ((normed.pose_readout, False), (plain.pose_readout, True)):
        moved = (head(2 * pooled) - head(pooled)).abs().max()
        assert (moved > 1e-3) == scale_matters, moved
    plain.eval().save_pretrained(tmp_path / "m")
    assert not RaxelsDiT.from_pretrained(tmp_path / "m").config.pose_head_norm


def test_video_stem_mixes_neighbouring_frames_and_survives_save_load(tmp_path):
    v = torch.randn(1, 48, 4, 8, 8)
    changed = v.clone()
    changed[:, :, 2] += 1.0  # one latent frame changes
    for stem, touched in ((0, [2]), (16, [1, 2, 3])):
        m = _small(video_stem=stem)
        tokens = (m.video_io.embed(changed) - m.video_io.embed(v)).abs().sum(-1).reshape(4, 16).sum(-1)
        # Wan's patch embedding (temporal patch 1) keeps frames apart; the stem lets each see its neighbours.
        assert [i for i in range(4) if tokens[i] > 1e-6] == touched, (stem, tokens)
    m.eval().save_pretrained(tmp_path / "m")
    m2 = RaxelsDiT.from_pretrained(tmp_path / "m").eval()
    assert m2.config.video_stem == 16
    x = (v, torch.randn(1, 48, 4, 8, 8), torch.rand(1), torch.rand(1))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(m(*x), m2(*x)))  # same weights; conv paths may differ


def test_motion_stem_compares_each_frame_with_the_first(tmp_path):
    v = torch.randn(1, 48, 4, 8, 8)
    m = _small(motion_stem=8)
    tv, tr = m.motion_encoder(v)
    assert tv.shape == (1, 64, 64) and tr.shape == (1, 64, 32)  # 4 frames x 4x4 tokens; _small's stream widths
    changed = v.clone()
    changed[:, :, 2] += 1.0
    per_frame = (m.motion_encoder(changed)[1] - tr).abs().sum(-1).reshape(4, 16).sum(-1)
    assert [i for i in range(4) if per_frame[i] > 1e-6] == [2]  # a later frame touches only its own tokens
    changed = v.clone()
    changed[:, :, 0] += 1.0
    per_frame = (m.motion_encoder(changed)[1] - tr).abs().sum(-1).reshape(4, 16).sum(-1)
    assert (per_frame > 1e-6).all()  # the first frame is every frame's reference
    x = (v, torch.randn(1, 48, 4, 8, 8), torch.rand(1), torch.rand(1))
    m.eval().save_pretrained(tmp_path / "m")
    m2 = RaxelsDiT.from_pretrained(tmp_path / "m").eval()
    assert m2.config.motion_stem == 8
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(m(*x), m2(*x)))
    with pytest.raises(ValueError, match="motion_stem needs"):
        m(v, torch.randn(1, 48, 2, 8, 8), torch.rand(1), torch.rand(1))  # fewer raxel frames than video frames


def test_plucker_variant_takes_six_channel_maps():
    m = _small(raxel_in_channels=96, camera_encoding="plucker")
    pv, pr = m(torch.randn(1, 48, 2, 8, 8), torch.randn(1, 96, 2, 8, 8), torch.rand(1), torch.rand(1))
    assert pr.shape == (1, 96, 2, 8, 8)
    with pytest.raises(ValueError, match="camera_encoding"):
        model_config("tiny", camera_encoding="bogus") and build_model(
            model_config("tiny", camera_encoding="bogus"), "meta"
        )


def test_unknown_config():
    with pytest.raises(ValueError, match="unknown model config"):
        model_config("huge")
    assert set(CONFIGS) == {"tiny", "wan-1.3b", "wan-14b"}


def test_training_attends_in_fp32_under_cpu_autocast_and_inference_in_bf16():
    from raxels.model.dit import attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 4, 64, 32) for _ in range(3))
    q16, k16, v16 = (x.bfloat16().requires_grad_() for x in (q, k, v))
    exact = torch.nn.functional.scaled_dot_product_attention(*(x.detach().double() for x in (q16, k16, v16)))
    with torch.autocast("cpu", torch.bfloat16):
        trained = attention(q16, k16, v16)
        with torch.no_grad():
            inferred = attention(q16, k16, v16)
    # The same bf16 inputs attended in fp32: far closer to the exact result than with the bf16 path's rounding.
    assert trained.dtype == torch.float32
    assert (trained.double() - exact).abs().max() < 0.05 * (inferred.double() - exact).abs().max()
    assert inferred.dtype == torch.bfloat16
    assert torch.equal(inferred, torch.nn.functional.scaled_dot_product_attention(q16, k16, v16))
    trained.sum().backward()
    assert all(x.grad is not None and x.grad.dtype == torch.bfloat16 for x in (q16, k16, v16))
