import pytest
import torch

from raxels.cameras import Cameras, canonicalise, intrinsics, project_to_rotation, rt_to_matrix
from raxels.data.realestate10k import shared_clip_pairs


def random_cameras(B: int, F: int, H: int, W: int, seed: int = 0, dtype=torch.float64) -> Cameras:
    g = torch.Generator().manual_seed(seed)
    R = project_to_rotation(torch.randn(B, F, 3, 3, generator=g, dtype=dtype))
    t = torch.randn(B, F, 3, generator=g, dtype=dtype)
    f = (0.6 + 0.8 * torch.rand(B, F, generator=g, dtype=dtype)) * W
    aspect = 0.9 + 0.2 * torch.rand(B, F, generator=g, dtype=dtype)
    cx = W / 2 + 3 * torch.randn(B, F, generator=g, dtype=dtype)
    cy = H / 2 + 3 * torch.randn(B, F, generator=g, dtype=dtype)
    return Cameras(intrinsics(f, f * aspect, cx, cy), rt_to_matrix(R, t), H, W)


@pytest.fixture
def canonical_random_cameras():
    return canonicalise(random_cameras(3, 8, 48, 64))[0]


@pytest.fixture(scope="session")
def re10k_pairs():
    pairs = shared_clip_pairs()
    if not pairs:
        pytest.skip("../shared/data/realestate10k_cameractrl is not present")
    return pairs


@pytest.fixture(scope="session")
def dl3dv_scene(tmp_path_factory):
    """A SynthRooms clip in DL3DV's layout: transforms.json (frames listed out of order) with full-size frames in
    images/ and half-size copies in images_2/. Returns (scene folder, the clip)."""
    import torch.nn.functional as F

    from raxels.data.synthrooms import SynthRoomsConfig, synth_clip
    from raxels.io import write_image, write_transforms

    scene = tmp_path_factory.mktemp("dl3dv") / "scene_a"
    clip = synth_clip(11, SynthRoomsConfig(frames=6, height=48, width=64))
    names = [f"images/frame_{i + 1:05d}.png" for i in range(6)]
    for name, frame in zip(names, clip.frames):
        write_image(scene / name, frame)
        half = F.interpolate(frame[None], scale_factor=0.5, mode="bilinear", antialias=True)[0]
        write_image(scene / "images_2" / name.split("/")[1], half)
    order = [3, 0, 5, 1, 4, 2]
    write_transforms(scene / "transforms.json", clip.cameras.frames(torch.tensor(order)), [names[i] for i in order])
    return scene, clip


@pytest.fixture(scope="session")
def tiny_wan_vae(tmp_path_factory):
    """A randomly initialised Wan VAE folder (diffusers AutoencoderKLWan): 4x spatial, 2x temporal, 4 channels."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=4,
        dim_mult=[1, 2, 2],
        num_res_blocks=1,
        temperal_downsample=[True, False],
        scale_factor_temporal=2,
        scale_factor_spatial=4,
    )
    folder = tmp_path_factory.mktemp("wanvae")
    vae.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_wan_transformer(tmp_path_factory):
    """A randomly initialised Wan 2.1 transformer folder (diffusers WanTransformer3DModel) shaped like the tests'
    small model (dim 64, 2 heads, FFN 128, 2 layers) on the tiny VAE's 4 latent channels, in two weight shards."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    wan = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=32, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=256, ffn_dim=128, num_layers=2, rope_max_seq_len=64,
    )
    for block in wan.blocks:  # not the near-identity init: every loaded tensor must matter
        torch.nn.init.normal_(block.scale_shift_table, std=0.5)
    torch.nn.init.normal_(wan.proj_out.weight, std=0.1)
    folder = tmp_path_factory.mktemp("wan")
    wan.save_pretrained(folder, max_shard_size="200KB")
    return folder
