"""RaxelsDiT: a video stream and a raxel stream of diffusers Wan 2.1 blocks, joined by Decoupled Self-Cross Attention.

Each layer: self-attention within each stream (3D RoPE), then cross-attention between the streams (video queries
attend to raxel keys and raxel queries to video keys, RoPE on both sides so a raxel token meets the video token
of its own pixel at zero relative offset), then each stream's FFN. Both streams are modulated by per-token
timestep embeddings (AdaLN, as Wan 2.2 TI2V), so any token can be clean (t = 0) or noised.

The raxel stream has its own weights and may be narrower than the video stream (the paper's 6B ray branch beside
Wan 14B): its cross-attention projects keys/values from the other stream's width.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanTransformerBlock
from torch import Tensor, nn

from .rope import apply_rope, causal_time_axis, grid_positions, resampled_axis, rope_freqs, sincos_embedding

Rope = Tensor  # complex rotations from `rope_freqs`


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """SDPA over [B, heads, N, head_dim]. Training on a CPU under bf16 autocast attends in fp32: there the bf16
    flash-attention backward was the slowest op of a step, 2-4x the fp32 forward and backward at 64 and 128 tokens
    per stream, within about 20% either way at 256 (bench/attention_backward.py); steps of the shipped presets took
    12% (first stage) and 23% (second) less time. Inference keeps the bf16 forward, 2-3x faster than fp32's."""
    if q.device.type == "cpu" and q.dtype == torch.bfloat16 and torch.is_grad_enabled():
        with torch.autocast("cpu", enabled=False):  # autocast would cast the fp32 inputs back to bf16
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float())
    return F.scaled_dot_product_attention(q, k, v)


class RaxelsAttnProcessor:
    """Wan's attention (RMS-normed q/k, SDPA) with separate RoPE for queries and keys."""

    def __call__(self, attn, hidden_states: Tensor, context: Tensor | None, rope_q: Rope | None, rope_k: Rope | None):
        context = hidden_states if context is None else context
        q = attn.norm_q(attn.to_q(hidden_states)).unflatten(2, (attn.heads, -1))
        k = attn.norm_k(attn.to_k(context)).unflatten(2, (attn.heads, -1))
        v = attn.to_v(context).unflatten(2, (attn.heads, -1))
        if rope_q is not None:
            q = apply_rope(q, rope_q)
        if rope_k is not None:
            k = apply_rope(k, rope_k)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        out = out.transpose(1, 2).flatten(2, 3).type_as(q)
        return attn.to_out[1](attn.to_out[0](out))


class StreamBlock(WanTransformerBlock):
    """One stream's Wan 2.1 block, its three stages callable apart so two streams can interleave them."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, other_dim: int, eps: float = 1e-6):
        super().__init__(dim, ffn_dim, heads, "rms_norm_across_heads", True, eps)
        if other_dim != dim:
            self.attn2.to_k = nn.Linear(other_dim, dim)
            self.attn2.to_v = nn.Linear(other_dim, dim)
        self.proc = RaxelsAttnProcessor()

    def modulation(self, temb: Tensor) -> tuple[Tensor, ...]:
        """temb [B, G, 6, dim], one per group of tokens sharing a noise level -> six [B, G, 1, dim]
        shift/scale/gate terms, broadcast over each group's tokens by `modulate` and `gated`."""
        return (self.scale_shift_table.unsqueeze(0) + temb.float()).unsqueeze(3).unbind(2)

    def self_attention(self, h: Tensor, mod: tuple[Tensor, ...], rope: Rope) -> Tensor:
        shift, scale, gate = mod[:3]
        x = modulate(self.norm1(h.float()), scale, shift).type_as(h)
        return (h.float() + gated(self.proc(self.attn1, x, None, rope, rope), gate)).type_as(h)

    def cross_attention(self, h: Tensor, other: Tensor, rope_q: Rope, rope_k: Rope) -> Tensor:
        x = self.norm2(h.float()).type_as(h)
        return h + self.proc(self.attn2, x, other, rope_q, rope_k)

    def feed_forward(self, h: Tensor, mod: tuple[Tensor, ...]) -> Tensor:
        shift, scale, gate = mod[3:]
        x = modulate(self.norm3(h.float()), scale, shift).type_as(h)
        return (h.float() + gated(self.ffn(x).float(), gate)).type_as(h)


def _grouped(x: Tensor, groups: int) -> Tensor:
    B, N, D = x.shape
    return x.reshape(B, groups, N // groups, D)


def modulate(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    """x [B, N, D] * (1 + scale) + shift, the terms [B, G, 1, D] shared by each of G equal groups of tokens.
    Broadcasting them, rather than repeating them for every token, gives the same numbers and saves a training
    step the memory traffic of six [B, N, D] tensors per block (on the tiny model about a tenth of its time)."""
    return (_grouped(x, scale.shape[1]) * (1 + scale) + shift).flatten(1, 2)


def gated(x: Tensor, gate: Tensor) -> Tensor:
    """x [B, N, D] * gate, the gate [B, G, 1, D] shared by each of G equal groups of tokens."""
    return (_grouped(x, gate.shape[1]) * gate).flatten(1, 2)


def beside_first(video: Tensor) -> Tensor:
    """Latents [B, C, T, h, w] -> [B, 2C, T, h, w]: every frame's channels followed by the first frame's."""
    return torch.cat([video, video[:, :, :1].expand_as(video)], 1)


class MotionStem(nn.Module):
    """Each latent frame beside the first one: two 3x3 convolutions + GELU within the frame, then patchified into
    tokens that are added to both streams' embeddings (same grid as the video's; raxel tokens get their own
    projection when the streams' widths differ)."""

    def __init__(self, in_channels: int, channels: int, dim: int, ray_dim: int, patch_size: tuple[int, int, int]):
        super().__init__()
        k, pad = (1, 3, 3), (0, 1, 1)
        self.body = nn.Sequential(
            nn.Conv3d(2 * in_channels, channels, k, padding=pad), nn.GELU(),
            nn.Conv3d(channels, channels, k, padding=pad), nn.GELU(),
        )
        self.to_video = nn.Conv3d(channels, dim, patch_size, stride=patch_size)
        self.to_raxel = nn.Conv3d(channels, ray_dim, patch_size, stride=patch_size) if ray_dim != dim else None

    def forward(self, video: Tensor) -> tuple[Tensor, Tensor]:
        h = self.body(beside_first(video))
        tv = self.to_video(h).flatten(2).transpose(1, 2)
        tr = tv if self.to_raxel is None else self.to_raxel(h).flatten(2).transpose(1, 2)
        return tv, tr


class RaxelsBlock(nn.Module):
    """Decoupled Self-Cross Attention over the two streams, then FFN."""

    def __init__(self, dim: int, ffn_dim: int, heads: int, ray_dim: int, ray_ffn_dim: int, ray_heads: int):
        super().__init__()
        self.video = StreamBlock(dim, ffn_dim, heads, other_dim=ray_dim)
        self.raxel = StreamBlock(ray_dim, ray_ffn_dim, ray_heads, other_dim=dim)

    def forward(
        self,
        hv: Tensor,
        hr: Tensor,
        temb_v: Tensor,
        temb_r: Tensor,
        rope_v: Rope,
        rope_r: Rope,
        rope_rv: Rope,
        rope_vr: Rope,
    ):
        mv, mr = self.video.modulation(temb_v), self.raxel.modulation(temb_r)
        hv = self.video.self_attention(hv, mv, rope_v)
        hr = self.raxel.self_attention(hr, mr, rope_r)
        # Both cross-attentions read the other stream after its self-attention: the order of streams is symmetric.
        hv, hr = (
            self.video.cross_attention(hv, hr, rope_v, rope_rv),
            self.raxel.cross_attention(hr, hv, rope_r, rope_vr),
        )
        return self.video.feed_forward(hv, mv), self.raxel.feed_forward(hr, mr)


class StreamIO(nn.Module):
    """Patch embedding, per-token timestep embedding and the output head of one stream."""

    def __init__(
        self,
        in_channels: int,
        dim: int,
        patch_size: tuple[int, int, int],
        freq_dim: int,
        eps: float = 1e-6,
        stem: int = 0,
    ):
        super().__init__()
        self.patch_size = tuple(patch_size)
        patchify = nn.Conv3d(stem or in_channels, dim, kernel_size=self.patch_size, stride=self.patch_size)
        # stem > 0: a 3x3x3 convolution + GELU over (frames, rows, columns) of the latents first (see RaxelsDiT).
        self.patch_embedding = (
            nn.Sequential(nn.Conv3d(in_channels, stem, 3, padding=1), nn.GELU(), patchify) if stem else patchify
        )
        self.timesteps_proj = Timesteps(freq_dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedder = TimestepEmbedding(freq_dim, dim)
        self.time_proj = nn.Linear(dim, 6 * dim)
        self.norm_out = FP32LayerNorm(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, in_channels * math.prod(self.patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)
        # A learned, per-token and per-channel correction of the skip weight c(t) (see `_skip`), from t alone.
        self.skip_gain = nn.Linear(dim, in_channels)
        # Start from a zero velocity: the first steps do not fight a random output layer.
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)
        nn.init.zeros_(self.skip_gain.weight)
        nn.init.zeros_(self.skip_gain.bias)

    def embed(self, x: Tensor) -> Tensor:
        return self.patch_embedding(x).flatten(2).transpose(1, 2).contiguous()

    def time_embedding(self, t: Tensor) -> tuple[Tensor, Tensor]:
        """t [B, G] in [0, 1], one per group of tokens (`_token_groups`) -> (temb [B, G, dim], modulation
        [B, G, 6, dim]). Wan's scale: 1000 t."""
        B, G = t.shape
        # Tokens share a handful of noise levels (one per sample or frame): embed each level once. On every token
        # the three linear layers cost about a tenth of the tiny model's forward.
        if torch.compiler.is_compiling():  # unique's data-dependent size would break the graph: embed every group
            levels, index = t.flatten(), slice(None)
        else:
            levels, index = torch.unique(t.flatten(), return_inverse=True)
        f = self.timesteps_proj(levels * 1000.0).to(self.time_embedder.linear_1.weight.dtype)
        temb = self.time_embedder(f)
        mod = self.time_proj(F.silu(temb))
        return temb[index].reshape(B, G, -1), mod[index].reshape(B, G, 6, -1)

    def skip_weight(self, t: Tensor, temb: Tensor, grid: tuple[int, int, int]) -> Tensor:
        """Weight of the velocity on its noisy input: c(t) (see `_skip`) plus the learned correction, per token
        and channel [B, N, C], expanded once to latent layout [B, C, T*pt, H*ph, W*pw]. t [B, G] and temb
        [B, G, dim] per group of tokens: the weight is computed once per group, then repeated for its tokens."""
        w = _per_token(_skip(t)[..., None] + self.skip_gain(temb), grid)
        B = w.shape[0]
        (T, H, W), (pt, ph, pw) = grid, self.patch_size
        w = w.reshape(B, T, 1, H, 1, W, 1, -1).expand(B, T, pt, H, ph, W, pw, -1)
        return w.permute(0, 7, 1, 2, 3, 4, 5, 6).reshape(B, -1, T * pt, H * ph, W * pw)

    def head(self, h: Tensor, temb: Tensor, grid: tuple[int, int, int]) -> Tensor:
        shift, scale = (self.scale_shift_table.unsqueeze(0) + temb.unsqueeze(2)).unsqueeze(3).unbind(2)
        h = modulate(self.norm_out(h.float()), scale, shift).type_as(h)
        h = self.proj_out(h)
        B = h.shape[0]
        (T, H, W), (pt, ph, pw) = grid, self.patch_size
        h = h.reshape(B, T, H, W, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return h.flatten(6, 7).flatten(4, 5).flatten(2, 3)


def _token_groups(t: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """t as [B], [B, T] (per latent frame) or [B, N] (per token) -> [B, G]: one level per group of N / G
    consecutive tokens (a frame's tokens are consecutive), G = T for the first two."""
    T, H, W = grid
    if t.dim() == 1:
        return t[:, None].expand(-1, T)
    if t.shape[1] in (T, T * H * W):
        return t
    raise ValueError(f"timesteps of shape {list(t.shape)} fit neither {T} frames nor {T * H * W} tokens")


def _per_token(x: Tensor, grid: tuple[int, int, int]) -> Tensor:
    """[B, G, ...] per group of tokens (`_token_groups`) -> [B, N, ...], each group's entry repeated."""
    B, G = x.shape[:2]
    N = math.prod(grid)
    return x[:, :, None].expand(B, G, N // G, *x.shape[2:]).reshape(B, N, *x.shape[2:])


def _skip(t: Tensor) -> Tensor:
    """Skip weight c(t) of the velocity on its input, per token [B, N].

    The network predicts v - c(t) x_t with c = Cov(v, x_t) / Var(x_t) = (2t - 1) / ((1 - t)^2 + t^2) for unit-variance
    latents (EDM-style preconditioning for rectified flow). Without it the network must copy its input noise
    through every layer to output v ~ x_t - x_0 at t ~ 1, where few-step sampling starts; measured on the tiny
    model, that copy error made its t = 1 prediction worse than the data mean. c(t) is right for latents the
    network knows nothing about; the more it knows x_0 (a memorised clip, a clean conditioning frame) the nearer
    the right weight comes to 1 / t, so a learned correction (`StreamIO.skip_gain`, zero at init) is added: with
    it the tiny model fits one clip's probe loss 80x in 400 steps, against 4x without."""
    return (2 * t - 1) / ((1 - t) ** 2 + t**2)


class RaxelsDiT(ModelMixin, ConfigMixin):
    """Joint video + raxel denoiser. forward(video, raxels, t_video, t_raxel) -> (velocity_video, velocity_raxel).

    video: [B, C, Tv, h, w] latents, raxels: [B, Cr, Tr, hr, wr] latents (any grid: positions are resampled onto
    the video grid for RoPE), t_*: [B], [B, T] or [B, tokens] in [0, 1] with 0 = clean. With return_pose (a model
    built with pose_head) a third output: [B, Tr, 9] per raxel frame, the auxiliary pose prediction.
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["RaxelsBlock"]

    @register_to_config
    def __init__(
        self,
        in_channels: int = 48,
        raxel_in_channels: int = 48,
        patch_size: tuple[int, int, int] = (1, 2, 2),
        dim: int = 256,
        heads: int = 4,
        ffn_dim: int = 768,
        num_layers: int = 6,
        ray_dim: int = 256,
        ray_heads: int = 4,
        ray_ffn_dim: int = 768,
        freq_dim: int = 256,
        camera_encoding: str = "raxel",
        pose_head: bool = False,
        pose_head_norm: bool = True,
        video_stem: int = 0,
        motion_stem: int = 0,
        video_position_embedding: bool = True,
        video_skip: bool = True,
    ):
        super().__init__()
        if dim % heads or ray_dim % ray_heads:
            raise ValueError("dim and ray_dim must be divisible by their head counts")
        if camera_encoding not in ("raxel", "plucker"):
            raise ValueError(f"camera_encoding must be 'raxel' or 'plucker', got {camera_encoding!r}")
        # video_stem > 0: the video latents pass a nonlinear 3x3x3 convolution before the patch embedding, so that
        # tokens can be built from pixel-level comparisons of neighbouring frames, which Wan VAE latents (a deep
        # causal 3D conv encoder) carry and the tiny model's pixel codec (space-to-depth) does not.
        # motion_stem > 0: the same idea against the first frame, into both streams (`MotionStem`). Both are probe
        # options the shipped model does not use (docs/experiments.md, "Why translations fail"). The module is not
        # called `motion_stem`: diffusers' register_to_config would overwrite it with the int.
        self.video_io = StreamIO(in_channels, dim, patch_size, freq_dim, stem=video_stem)
        self.raxel_io = StreamIO(raxel_in_channels, ray_dim, patch_size, freq_dim)
        self.motion_encoder = MotionStem(in_channels, motion_stem, dim, ray_dim, patch_size) if motion_stem else None
        self.blocks = nn.ModuleList(
            [RaxelsBlock(dim, ffn_dim, heads, ray_dim, ray_ffn_dim, ray_heads) for _ in range(num_layers)]
        )
        # Training aid only (`aux_pose`): each raxel frame's pooled last hidden state -> its pose (9 numbers per
        # frame of the token grid's temporal patch). Inference reads cameras from the raxels and never calls it.
        # pose_head_norm=False: no LayerNorm in front. With one, the pose loss cannot see the pooled state's scale,
        # and in the centres-only probe training inflated it until the clips' differences were lost in it
        # (docs/experiments.md, "Why translations fail"). The norm has no parameters, so both variants share the
        # state-dict keys.
        norm = FP32LayerNorm(ray_dim, 1e-6, elementwise_affine=False) if pose_head_norm else nn.Identity()
        self.pose_readout = nn.Sequential(norm, nn.Linear(ray_dim, 9 * patch_size[0])) if pose_head else None
        self.gradient_checkpointing = False

    def _grids(self, video: Tensor, raxels: Tensor):
        pt, ph, pw = self.config.patch_size
        gv = (video.shape[2] // pt, video.shape[3] // ph, video.shape[4] // pw)
        gr = (raxels.shape[2] // pt, raxels.shape[3] // ph, raxels.shape[4] // pw)
        return gv, gr

    def _positions(self, gv, gr, device):
        pos_v = grid_positions(*(torch.arange(n, device=device) for n in gv))
        # Raxel frame f describes video frame f, wherever the VAE's temporal compression put it; raxel images may
        # be smaller or larger than the frames (raxel_scale) and the latents spatially compressed.
        time = causal_time_axis(gr[0], gv[0], device)
        pos_r = grid_positions(time, *(resampled_axis(n, m, device) for n, m in zip(gr[1:], gv[1:])))
        return pos_v, pos_r

    def _ropes(self, pos_v, pos_r):
        hd_v = self.config.dim // self.config.heads
        hd_r = self.config.ray_dim // self.config.ray_heads
        return (
            rope_freqs(pos_v, hd_v),
            rope_freqs(pos_r, hd_r),
            rope_freqs(pos_r, hd_v),  # raxel keys seen by video queries
            rope_freqs(pos_v, hd_r),  # video keys seen by raxel queries
        )

    def forward(self, video: Tensor, raxels: Tensor, t_video: Tensor, t_raxel: Tensor, return_pose: bool = False):
        gv, gr = self._grids(video, raxels)
        pos_v, pos_r = self._positions(gv, gr, video.device)
        ropes = self._ropes(pos_v, pos_r)
        hv = self.video_io.embed(video)
        if self.config.video_position_embedding:
            hv = hv + sincos_embedding(pos_v, self.config.dim).to(video.dtype)
        hr = self.raxel_io.embed(raxels) + sincos_embedding(pos_r, self.config.ray_dim).to(video.dtype)
        if self.motion_encoder is not None:
            if gv != gr:
                raise ValueError(f"motion_stem needs the video and raxel token grids equal, got {gv} and {gr}")
            mv, mr = self.motion_encoder(video)
            hv, hr = hv + mv, hr + mr
        tv_grp, tr_grp = _token_groups(t_video.to(video.dtype), gv), _token_groups(t_raxel.to(video.dtype), gr)
        temb_v, mod_v = self.video_io.time_embedding(tv_grp)
        temb_r, mod_r = self.raxel_io.time_embedding(tr_grp)
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hv, hr = self._gradient_checkpointing_func(block, hv, hr, mod_v, mod_r, *ropes)
            else:
                hv, hr = block(hv, hr, mod_v, mod_r, *ropes)
        out_v = self.video_io.head(hv, temb_v, gv)
        if self.config.video_skip:
            out_v = out_v + self.video_io.skip_weight(tv_grp, temb_v, gv) * video
        out_r = self.raxel_io.head(hr, temb_r, gr) + self.raxel_io.skip_weight(tr_grp, temb_r, gr) * raxels
        if not return_pose:
            return out_v, out_r
        if self.pose_readout is None:
            raise ValueError("return_pose needs a model built with pose_head=True")
        B, (T, H, W) = hr.shape[0], gr
        pose = self.pose_readout(hr.reshape(B, T, H * W, -1).mean(2).float())
        return out_v, out_r, pose.reshape(B, T * self.config.patch_size[0], 9)
