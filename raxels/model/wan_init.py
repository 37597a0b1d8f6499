"""Start the video stream from a pre-trained Wan 2.1 transformer (a diffusers `WanTransformer3DModel` folder), as
the paper starts from Wan 2.1 14B.

The video stream is built of Wan's own blocks, so its self-attention, FFN, norms, modulation, timestep embedding,
patch embedding and output head load one to one. Wan's second attention reads the text; here it reads the raxel
stream, so it is not loaded, and its output projection starts at zero: before training, the video stream computes
exactly Wan's function without the text (the model must be built with `video_position_embedding=False` and
`video_skip=False`, which Wan does not have). Weights are read tensor by tensor from the safetensors files, so a
14B checkpoint is never materialised twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import InputError

# Wan's keys -> this model's, by prefix. Wan keys under no prefix here (the text and image embedders, the text
# cross-attention) are not used.
_PREFIXES = (
    ("patch_embedding.", "video_io.patch_embedding."),
    ("condition_embedder.time_embedder.", "video_io.time_embedder."),
    ("condition_embedder.time_proj.", "video_io.time_proj."),
    ("proj_out.", "video_io.proj_out."),
    ("scale_shift_table", "video_io.scale_shift_table"),
)
_BLOCK_PARTS = ("attn1.", "norm2.", "ffn.", "scale_shift_table")


def _our_key(key: str) -> str | None:
    for wan, ours in _PREFIXES:
        if key.startswith(wan):
            return ours + key[len(wan) :]
    if key.startswith("blocks."):
        _, i, rest = key.split(".", 2)
        if rest.startswith(_BLOCK_PARTS):
            return f"blocks.{i}.video.{rest}"
    return None


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "diffusion_pytorch_model.safetensors.index.json"
    if index.is_file():
        return sorted({folder / name for name in json.loads(index.read_text())["weight_map"].values()})
    single = folder / "diffusion_pytorch_model.safetensors"
    if single.is_file():
        return [single]
    raise InputError(f"{folder}: no diffusion_pytorch_model.safetensors (or its index) for the Wan transformer")


def check_wan_config(folder: str | os.PathLike, model_config) -> dict:
    """The Wan folder's config.json, checked against the shapes of the model to be built (a `ModelConfig`)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise InputError(f"{folder}: no Wan transformer here (config.json missing); weights are never downloaded")
    wan = json.loads(path.read_text())
    try:
        want = {
            "dim": wan["num_attention_heads"] * wan["attention_head_dim"],
            "heads": wan["num_attention_heads"],
            "ffn_dim": wan["ffn_dim"],
            "num_layers": wan["num_layers"],
            "in_channels": wan["in_channels"],
            "patch_size": tuple(wan["patch_size"]),
            "freq_dim": wan["freq_dim"],
        }
    except KeyError as e:
        raise InputError(f"{path}: not a WanTransformer3DModel config (no {e})") from None
    have = {k: tuple(v) if k == "patch_size" else v for k, v in ((k, getattr(model_config, k)) for k in want)}
    wrong = [f"{k} {have[k]} (Wan: {want[k]})" for k in want if have[k] != want[k]]
    if wan.get("out_channels", wan["in_channels"]) != wan["in_channels"]:
        wrong.append(f"out_channels {wan['out_channels']} != in_channels {wan['in_channels']}")
    if wrong:
        raise ValueError(f"{folder}: the video stream does not have Wan's shape: {', '.join(wrong)}")
    return wan


@torch.no_grad()
def load_wan_video_stream(model, folder: str | os.PathLike) -> dict:
    """Copy a Wan transformer's weights into `model`'s video stream and zero the output of its cross-attention to
    the raxel stream. Returns {"loaded": [our keys], "unused": [Wan keys]}; ValueError on a shape mismatch."""
    folder = Path(folder)
    cfg = model.config
    check_wan_config(folder, cfg)
    if cfg.video_position_embedding or cfg.video_skip:
        raise ValueError("a video stream from Wan needs video_position_embedding=False and video_skip=False")
    if cfg.video_stem or cfg.motion_stem:
        raise ValueError("a video stream from Wan cannot have video_stem or motion_stem")
    params = model.state_dict()
    loaded, unused = [], []
    for file in _weight_files(folder):
        try:
            handle = safe_open(str(file), "pt")
        except (SafetensorError, OSError) as e:
            raise InputError(f"{file}: not a readable safetensors file ({e})") from None
        with handle as f:
            for key in f.keys():
                ours = _our_key(key)
                if ours is None or ours not in params:  # e.g. a variant's extra tensors
                    unused.append(key)
                    continue
                tensor = f.get_tensor(key)
                if params[ours].shape != tensor.shape:
                    have, want = tuple(tensor.shape), tuple(params[ours].shape)
                    raise ValueError(f"{file.name}: {key} has shape {have}, {ours} {want}")
                params[ours].copy_(tensor)
                loaded.append(ours)
    missing = [k for k in params if _our_wan_part(k) and k not in loaded]
    if missing:
        raise ValueError(f"{folder}: the Wan weights lack {len(missing)} video-stream tensors, e.g. {missing[0]}")
    for block in model.blocks:
        block.video.attn2.to_out[0].weight.zero_()
        block.video.attn2.to_out[0].bias.zero_()
    return {"loaded": loaded, "unused": unused}


def _our_wan_part(key: str) -> bool:
    """Whether a key of this model is one Wan provides."""
    if any(key.startswith(ours) for _, ours in _PREFIXES):
        return True
    parts = key.split(".", 3)
    return len(parts) == 4 and parts[0] == "blocks" and parts[2] == "video" and parts[3].startswith(_BLOCK_PARTS)
