"""Latent codecs: video frames and raxel images go through the same one.

Layouts: images [B, F, C, H, W] in [-1, 1]; latents [B, C_lat, T, h, w] (the layout of Wan's DiT input).
Video latents may be temporally compressed (Wan VAE: 1 + 4k frames -> 1 + k latents); raxel latents never are:
each camera is encoded as its own one-frame clip, so every camera keeps one latent frame.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InputError, first_line


class LatentCodec(ABC):
    spatial_factor: int
    temporal_factor: int
    frame_multiple: int = 1  # clips must have 1 + k x this many frames

    @abstractmethod
    def latent_channels(self, image_channels: int = 3) -> int: ...

    @abstractmethod
    def encode_video(self, frames: Tensor) -> Tensor: ...

    @abstractmethod
    def decode_video(self, latents: Tensor, num_frames: int) -> Tensor: ...

    def encode_raxels(self, images: Tensor) -> Tensor:
        """[B, F, C, H, W] -> [B, C_lat, F, h, w], one latent frame per camera."""
        B, Fr = images.shape[:2]
        z = self.encode_video(images.flatten(0, 1).unsqueeze(1))  # B*F one-frame clips
        return z.reshape(B, Fr, *z.shape[1:]).squeeze(3).permute(0, 2, 1, 3, 4)

    def decode_raxels(self, latents: Tensor) -> Tensor:
        """[B, C_lat, F, h, w] -> [B, F, C, H, W]."""
        B, C, Fr, h, w = latents.shape
        z = latents.permute(0, 2, 1, 3, 4).reshape(B * Fr, C, 1, h, w)
        x = self.decode_video(z, 1)  # [B*F, 1, C, H, W]
        return x.reshape(B, Fr, *x.shape[2:])

    def latent_frames(self, num_frames: int) -> int:
        return (num_frames - 1) // self.temporal_factor + 1

    def to(self, device) -> LatentCodec:
        """Move any weights to `device` (latents follow their inputs' device)."""
        return self


# Per-channel (mean, std) of images over SynthRooms clips, so that latents have about unit variance: flow matching
# weighs every latent against unit noise, and unnormalised raxels (std 0.15-0.27) would drown in it.
VIDEO_NORM = ((-0.14,) * 3, (0.35,) * 3)
CAMERA_NORM = {
    "raxel": ((0.0, 0.0, 0.5), (0.27, 0.19, 0.15)),
    "plucker": ((0.0, 0.0, 0.82, 0.0, 0.04, 0.0), (0.41, 0.37, 0.13, 0.15, 0.46, 0.2)),
}


class PixelCodec(LatentCodec):
    """Per-channel normalisation, then space-to-depth by `factor` (no weights, exact inverse): the CPU default."""

    temporal_factor = 1

    def __init__(self, factor: int = 4, camera_encoding: str = "raxel"):
        self.spatial_factor = factor
        self.video_norm = VIDEO_NORM
        self.camera_norm = CAMERA_NORM[camera_encoding]

    def latent_channels(self, image_channels: int = 3) -> int:
        return image_channels * self.spatial_factor**2

    def _encode(self, images: Tensor, norm) -> Tensor:
        B, Fr, C, H, W = images.shape
        s = self.spatial_factor
        if H % s or W % s:
            raise ValueError(f"frame size {W}x{H} is not divisible by the codec factor {s}")
        mean, std = (images.new_tensor(v).view(1, C, 1, 1) for v in norm)
        z = F.pixel_unshuffle((images.flatten(0, 1) - mean) / std, s)
        return z.reshape(B, Fr, *z.shape[1:]).permute(0, 2, 1, 3, 4)

    def _decode(self, latents: Tensor, norm) -> Tensor:
        B, C, T, h, w = latents.shape
        x = F.pixel_shuffle(latents.permute(0, 2, 1, 3, 4).flatten(0, 1), self.spatial_factor)
        mean, std = (x.new_tensor(v).view(1, -1, 1, 1) for v in norm)
        x = x * std + mean
        return x.reshape(B, T, *x.shape[1:])

    def encode_video(self, frames: Tensor) -> Tensor:
        return self._encode(frames, self.video_norm)

    def decode_video(self, latents: Tensor, num_frames: int) -> Tensor:
        return self._decode(latents, self.video_norm)

    def encode_raxels(self, images: Tensor) -> Tensor:
        return self._encode(images, self.camera_norm)

    def decode_raxels(self, latents: Tensor) -> Tensor:
        return self._decode(latents, self.camera_norm)


CODECS = ("pixel", "wan-vae")
# diffusers' AutoencoderKLWan encodes the first frame, then chunks of 4 frames, and drops frames beyond the last
# whole chunk, whatever its temporal compression: clips must have 1 + 4k frames.
WAN_FRAME_MULTIPLE = 4


def wan_vae_factors(config) -> tuple[int, int]:
    """(spatial, temporal) compression of a Wan VAE config (a dict or diffusers' FrozenDict).

    Derived from the architecture, not the config's scale_factor_* fields, which nothing checks."""
    return 2 ** (len(config["dim_mult"]) - 1), 2 ** sum(bool(b) for b in config["temperal_downsample"])


def read_wan_vae_config(folder: str | os.PathLike) -> dict:
    """The VAE folder's config.json, without loading any weights (settings are checked before a run starts)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise InputError(f"{folder}: no Wan VAE here (config.json missing); weights are never downloaded")
    try:
        config = json.loads(path.read_text())
        wan_vae_factors(config)
        int(config["z_dim"])
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{path}: not a Wan VAE config ({type(e).__name__}: {e})") from None
    return config


class WanVAECodec(LatentCodec):
    """diffusers AutoencoderKLWan loaded from a local folder; latents normalised by the VAE's mean/std."""

    frame_multiple = WAN_FRAME_MULTIPLE

    def __init__(self, vae):
        self.vae = vae.eval().requires_grad_(False)
        self.spatial_factor, self.temporal_factor = wan_vae_factors(vae.config)
        z = vae.config.z_dim
        self.mean = torch.tensor(vae.config.latents_mean[:z]).view(1, z, 1, 1, 1)
        self.std = torch.tensor(vae.config.latents_std[:z]).view(1, z, 1, 1, 1)

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, torch_dtype: torch.dtype = torch.float32) -> WanVAECodec:
        from diffusers import AutoencoderKLWan

        read_wan_vae_config(folder)
        try:
            vae = AutoencoderKLWan.from_pretrained(Path(folder), torch_dtype=torch_dtype, local_files_only=True)
        except (OSError, RuntimeError, ValueError) as e:  # missing, corrupt or mismatched weights
            raise InputError(f"{folder}: the Wan VAE's weights do not load ({first_line(e)})") from None
        return cls(vae)

    def to(self, device) -> WanVAECodec:
        self.vae.to(device)
        return self

    def latent_channels(self, image_channels: int = 3) -> int:
        if image_channels != 3:
            raise ValueError("the Wan VAE encodes 3-channel images only")
        return int(self.vae.config.z_dim)

    @torch.no_grad()
    def encode_video(self, frames: Tensor) -> Tensor:
        x = frames.permute(0, 2, 1, 3, 4).to(self.vae.dtype)
        z = self.vae.encode(x).latent_dist.mode().float()
        return (z - self.mean.to(z)) / self.std.to(z)

    @torch.no_grad()
    def decode_video(self, latents: Tensor, num_frames: int) -> Tensor:
        z = latents * self.std.to(latents) + self.mean.to(latents)
        x = self.vae.decode(z.to(self.vae.dtype)).sample.float()
        return x[:, :, :num_frames].permute(0, 2, 1, 3, 4).clamp(-1, 1)


def check_codec(name: str, camera_encoding: str = "raxel", vae: str | os.PathLike = "") -> dict | None:
    """A one-line ValueError for codec settings that cannot work, before anything loads; the Wan VAE's config for
    "wan-vae", None for "pixel"."""
    if name == "pixel":
        return None
    if name != "wan-vae":
        raise ValueError(f"unknown codec {name!r}; choose from {CODECS}")
    if camera_encoding != "raxel":
        raise ValueError("the Wan VAE encodes 3-channel images: camera_encoding must be raxel")
    if not vae:
        raise ValueError("codec wan-vae needs vae, the Wan VAE's folder")
    return read_wan_vae_config(vae)


def load_codec(name: str, camera_encoding: str = "raxel", factor: int = 4, vae: str | os.PathLike = "") -> LatentCodec:
    """The codec a model was trained with: `PixelCodec(factor)` or the Wan VAE in the folder `vae`."""
    if check_codec(name, camera_encoding, vae) is None:
        return PixelCodec(factor, camera_encoding)
    return WanVAECodec.from_pretrained(vae)
