import shutil

import pytest
import torch

from raxels.errors import InputError
from raxels.model import build_model, model_config
from raxels.model.wan_init import load_wan_video_stream

SHAPE = dict(in_channels=4, raxel_in_channels=4, dim=64, heads=2, ffn_dim=128, num_layers=2, ray_dim=32, ray_heads=2,
             ray_ffn_dim=64)
WAN_STREAM = dict(video_position_embedding=False, video_skip=False)


def test_the_video_stream_computes_wans_function(tiny_wan_transformer):
    from diffusers import WanTransformer3DModel

    assert (tiny_wan_transformer / "diffusion_pytorch_model.safetensors.index.json").is_file()  # sharded
    wan = WanTransformer3DModel.from_pretrained(tiny_wan_transformer).eval()
    for block in wan.blocks:  # Wan's text cross-attention has no counterpart here: compare without it
        block.attn2.to_out[0].weight.data.zero_()
        block.attn2.to_out[0].bias.data.zero_()
    model = build_model(model_config("tiny", **SHAPE, **WAN_STREAM)).eval()
    report = load_wan_video_stream(model, tiny_wan_transformer)
    assert len(report["loaded"]) == 2 + 6 + 3 + 2 * 17  # patch and timestep embeddings, head, 17 per block
    assert all(k.startswith(("condition_embedder.text", "blocks.")) for k in report["unused"])

    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(2, 4, 3, 8, 8, generator=g), torch.tensor([0.3, 0.8])
    with torch.no_grad():
        ref = wan(x, t * 1000, torch.randn(2, 5, 16, generator=g)).sample
        ours = [model(x, torch.randn(2, 4, 3, 8, 8, generator=g), t, torch.rand(2, generator=g))[0] for _ in range(2)]
    assert ref.abs().mean() > 0.1
    assert torch.allclose(ours[0], ref, atol=1e-5)
    assert torch.equal(ours[0], ours[1])  # the raxel stream's input does not reach the video stream yet


def test_bad_wan_folders_and_models(tiny_wan_transformer, tmp_path):
    with pytest.raises(InputError, match="no Wan transformer here"):
        load_wan_video_stream(build_model(model_config("tiny", **SHAPE, **WAN_STREAM)), tmp_path)
    with pytest.raises(ValueError, match=r"ffn_dim 96 \(Wan: 128\)"):
        load_wan_video_stream(build_model(model_config("tiny", **dict(SHAPE, ffn_dim=96), **WAN_STREAM)),
                              tiny_wan_transformer)
    with pytest.raises(ValueError, match="video_skip=False"):
        load_wan_video_stream(build_model(model_config("tiny", **SHAPE)), tiny_wan_transformer)
    shutil.copy(tiny_wan_transformer / "config.json", tmp_path / "config.json")
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="not a readable safetensors file"):
        load_wan_video_stream(build_model(model_config("tiny", **SHAPE, **WAN_STREAM)), tmp_path)


# The config.json files of the Wan 2.1 Diffusers releases (transformer/ and vae/), the fields that matter here.
WAN_21_T2V_1_3B = dict(attention_head_dim=128, num_attention_heads=12, ffn_dim=8960, num_layers=30, in_channels=16,
                       out_channels=16, patch_size=[1, 2, 2], freq_dim=256, text_dim=4096)
WAN_21_14B = dict(WAN_21_T2V_1_3B, num_attention_heads=40, ffn_dim=13824, num_layers=40)
WAN_21_VAE = dict(
    base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True]
)


@pytest.mark.parametrize("name, wan", [("wan-1.3b", WAN_21_T2V_1_3B), ("wan-14b", WAN_21_14B)])
def test_the_named_configs_have_wan_21s_shapes(tmp_path, name, wan):
    import json

    from raxels.codec import wan_vae_factors
    from raxels.model.wan_init import check_wan_config

    (tmp_path / "config.json").write_text(json.dumps(wan))
    check_wan_config(tmp_path, model_config(name))  # raises on any difference
    assert model_config(name).in_channels == WAN_21_VAE["z_dim"] and wan_vae_factors(WAN_21_VAE) == (8, 4)
