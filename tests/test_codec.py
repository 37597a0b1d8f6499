import shutil

import pytest
import torch

from raxels.codec import PixelCodec, WanVAECodec
from raxels.errors import InputError


def test_pixel_codec_exact_round_trip():
    codec = PixelCodec(4)
    x = torch.rand(2, 5, 3, 16, 24) * 2 - 1
    z = codec.encode_video(x)
    assert z.shape == (2, 48, 5, 4, 6)
    assert torch.allclose(codec.decode_video(z, 5), x, atol=1e-6)
    r = codec.encode_raxels(x)
    assert r.shape == (2, 48, 5, 4, 6) and torch.allclose(codec.decode_raxels(r), x, atol=1e-6)
    assert abs(z.std().item() - 1.0) < 2.0  # normalised, not raw pixel values
    with pytest.raises(ValueError, match="divisible"):
        codec.encode_video(torch.zeros(1, 1, 3, 10, 16))


def test_wan_vae_codec_loads_from_local_folder(tiny_wan_vae):
    codec = WanVAECodec.from_pretrained(tiny_wan_vae)
    assert codec.latent_channels() == 4 and codec.spatial_factor == 4 and codec.temporal_factor == 2
    video = torch.rand(1, 5, 3, 16, 16) * 2 - 1
    z = codec.encode_video(video)
    assert z.shape == (1, 4, codec.latent_frames(5), 4, 4) == (1, 4, 3, 4, 4)
    assert codec.decode_video(z, 5).shape == video.shape
    # Raxels: one latent frame per camera, no temporal compression.
    rz = codec.encode_raxels(video)
    assert rz.shape == (1, 4, 5, 4, 4)
    assert codec.decode_raxels(rz).shape == video.shape
    # Per-camera encoding equals encoding that camera alone.
    alone = codec.encode_raxels(video[:, 2:3])
    assert torch.allclose(alone[:, :, 0], rz[:, :, 2], atol=1e-5)


def test_wan_vae_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no Wan VAE"):
        WanVAECodec.from_pretrained(tmp_path / "nothing")


def test_wan_vae_with_corrupt_weights(tiny_wan_vae, tmp_path):
    shutil.copy(tiny_wan_vae / "config.json", tmp_path / "config.json")
    (tmp_path / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InputError, match="the Wan VAE's weights do not load"):
        WanVAECodec.from_pretrained(tmp_path)
