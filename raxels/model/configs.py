"""Model sizes. `tiny` trains on a laptop CPU; `wan-1.3b` and `wan-14b` follow Wan 2.1's shapes plus a ray branch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from .dit import RaxelsDiT


@dataclass(frozen=True)
class ModelConfig:
    in_channels: int = 48  # PixelCodec(4): 3 * 4 * 4
    raxel_in_channels: int = 48
    patch_size: tuple[int, int, int] = (1, 2, 2)
    dim: int = 256
    heads: int = 4
    ffn_dim: int = 768
    num_layers: int = 6
    ray_dim: int = 256
    ray_heads: int = 4
    ray_ffn_dim: int = 768
    freq_dim: int = 256
    camera_encoding: str = "raxel"
    pose_head: bool = False  # the training-only auxiliary pose readout (TrainConfig.pose_loss_weight)
    # a LayerNorm at that readout's input (False: docs/experiments.md, "Why translations fail")
    pose_head_norm: bool = True
    video_stem: int = 0  # channels of a 3x3x3 conv + GELU before the video patch embedding (0: Wan's plain one)
    motion_stem: int = 0  # channels of `MotionStem`: each frame compared with the first, into both streams (0: none)
    # The video stream's absolute sin-cos positions and velocity skip; both off when it starts from Wan's weights
    # (`wan_init`), whose function has neither.
    video_position_embedding: bool = True
    video_skip: bool = True


CONFIGS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(),
    # Wan 2.1 T2V 1.3B: dim 1536, 12 heads, FFN 8960, 30 layers, 16-channel Wan VAE latents.
    "wan-1.3b": ModelConfig(16, 16, (1, 2, 2), 1536, 12, 8960, 30, 768, 6, 3072),
    # Wan 2.1 14B: dim 5120, 40 heads, FFN 13824, 40 layers; the ray branch (3072 wide) brings it to about 20B.
    "wan-14b": ModelConfig(16, 16, (1, 2, 2), 5120, 40, 13824, 40, 3072, 24, 12288),
}


def model_config(name: str, **overrides) -> ModelConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}; choose from {sorted(CONFIGS)}")
    return replace(CONFIGS[name], **overrides)


def build_model(cfg: ModelConfig, device: str | torch.device | None = None) -> RaxelsDiT:
    """Build a RaxelsDiT; device='meta' builds shapes only (for counting the big configs)."""
    with torch.device(device or "cpu"):
        return RaxelsDiT(**asdict(cfg))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
