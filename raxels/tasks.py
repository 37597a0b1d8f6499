"""The three tasks and the self-consistency test, as plain functions over a pipeline (model + codec).

Each task only builds a `TaskMask` and calls the one sampler in `flow.py`:
  estimate: video clean -> raxels sampled -> cameras;
  generate: input frames + raxels clean -> remaining video sampled;
  joint:    input frames (+ their cameras if intrinsics are given) clean -> video and raxels sampled.
All cameras returned are canonical (first camera = identity, farthest centre at distance 1), intrinsics in pixels
of the pipeline's frame size.
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor

from .cameras import Cameras, canonicalise, intrinsics, invert_rigid
from .codec import LatentCodec, load_codec
from .data.batches import CAMERA_CHANNELS, camera_image_size, camera_images
from .device import resolve_device, resolve_precision
from .errors import InputError, first_line
from .flow import TaskMask, sample, task_mask
from .model import RaxelsDiT
from .raxels import raxels_to_cameras
from .subsets import consecutive_windows, interleaved_subsets, merge_subsets, own_frames

PIPELINE_FILE = "pipeline.json"


@dataclass
class PipelineConfig:
    height: int = 32
    width: int = 32
    codec: str = "pixel"  # or "wan-vae"
    codec_factor: int = 4  # the pixel codec's
    # The wan-vae codec's VAE folder, as trained with; a `vae/` folder beside the weights is used first.
    vae: str = ""
    # Raxel images are made at this fraction of the frame size (the paper makes them at half size for the VAE).
    raxel_scale: float = 1.0
    camera_encoding: str = "raxel"
    shift: float = 1.0  # sampler timestep shift
    train_frames: tuple[int, ...] = (8,)
    # Raxel decoding prior (raxels_to_cameras): "centred" holds the principal point at the image centre, as it
    # is in SynthRooms and RealEstate10K; "free" fits it per frame. Measured on 100 held-out SynthRooms clips
    # with the previous shipped model: mean rotation error 9.0 deg centred, 9.5 deg free.
    intrinsics_model: str = "centred"
    # Pixels per frame the decoding fits on (None: all). Measured on the shipped model's raxels of 60 held-out
    # 16-frame clips: the same RRA@15 / AUC@30 / mean rotation error at 256 as at all 1024, in a quarter of the time
    # (the model's error, not the decoder's, dominates).
    decode_points: int | None = 256


@dataclass
class Pipeline:
    model: RaxelsDiT
    codec: LatentCodec
    cfg: PipelineConfig
    # Inference precision of the transformer (a property of the run, not of the checkpoint, so not in
    # pipeline.json). bf16 on this repository's CPU: the tiny model's 2-step estimate of a 16-frame clip, decoding
    # included, takes 0.099 s against 0.124 s in fp32; the raxel velocity differs from fp32 by 0.15% (relative norm).
    precision: str = "fp32"

    @classmethod
    def from_pretrained(cls, folder: str | Path, precision: str = "auto", device: str = "cpu") -> Pipeline:
        """A model folder (`export_model`'s): weights, config.json and pipeline.json. device: "auto", "cpu",
        "cuda", ...; the tasks take and return CPU tensors whatever the device."""
        folder = Path(folder)
        if not (folder / PIPELINE_FILE).is_file() or not (folder / "config.json").is_file():
            raise InputError(f"{folder}: not a raxels model folder ({PIPELINE_FILE} or config.json missing)")
        cfg = read_pipeline_config(folder)
        device = resolve_device(device)
        vae = folder / "vae" if (folder / "vae" / "config.json").is_file() else cfg.vae
        try:
            codec = load_codec(cfg.codec, cfg.camera_encoding, cfg.codec_factor, vae).to(device)
        except ValueError as e:
            raise InputError(f"{folder}: {e}") from None
        precision = resolve_precision(precision, device)
        # bf16 weights as well as autocast: autocast alone re-casts every weight on every call (a tenth of a
        # 2-step estimate of the tiny model), and a large model needs half the memory.
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        try:
            model = RaxelsDiT.from_pretrained(folder, torch_dtype=dtype).eval().to(device)
        except (OSError, RuntimeError) as e:  # missing, corrupt or mismatched weights (diffusers' wording)
            raise InputError(f"{folder}: the model's weights do not load ({first_line(e)})") from None
        return cls(model, codec, cfg, precision)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def raxel_size(self) -> tuple[int, int]:
        """(height, width) of the raxel images the model sees."""
        return camera_image_size(self.cfg.height, self.cfg.width, self.cfg.raxel_scale)

    @contextlib.contextmanager
    def autocast(self):
        if resolve_precision(self.precision, self.model.device) == "fp32":
            yield
            return
        with warnings.catch_warnings(), torch.autocast(self.model.device.type, dtype=torch.bfloat16):
            # Wan's RMSNorm keeps fp32 weights; torch then takes its unfused path and warns on every call.
            warnings.filterwarnings("ignore", message="Mismatch dtype between input and weight")
            yield


def read_pipeline_config(folder: str | Path) -> PipelineConfig:
    d = json.loads(Path(folder, PIPELINE_FILE).read_text())
    d["train_frames"] = tuple(d.get("train_frames", (8,)))
    return PipelineConfig(**d)


def write_pipeline_config(folder: str | Path, cfg: PipelineConfig) -> None:
    Path(folder, PIPELINE_FILE).write_text(json.dumps(asdict(cfg), indent=2))


def _check_frames(pipe: Pipeline, video: Tensor, what: str) -> Tensor:
    if video.dim() == 4:
        video = video[None]
    if video.dim() != 5 or video.shape[2] != 3:
        raise ValueError(f"{what} must be [B,F,3,H,W] or [F,3,H,W], got {list(video.shape)}")
    if tuple(video.shape[-2:]) != (pipe.cfg.height, pipe.cfg.width):
        raise ValueError(
            f"{what} is {video.shape[-1]}x{video.shape[-2]} but the model works at "
            f"{pipe.cfg.width}x{pipe.cfg.height}; resize first (raxels.data.clips.resize_clip)"
        )
    if not torch.isfinite(video).all():
        raise ValueError(f"{what} contains NaN or inf")
    return video.float()


def _blank_camera_latents(pipe: Pipeline, batch: int, frames: int) -> Tensor:
    """Placeholder camera latents for frames the sampler will generate (their values are never read)."""
    s = pipe.codec.spatial_factor
    channels = pipe.codec.latent_channels(CAMERA_CHANNELS[pipe.cfg.camera_encoding])
    h, w = pipe.raxel_size()
    return torch.zeros(batch, channels, frames, h // s, w // s, device=pipe.device)


def _camera_latents(pipe: Pipeline, cams: Cameras) -> Tensor:
    images = camera_images(cams.to(torch.float64), pipe.cfg.camera_encoding, pipe.cfg.raxel_scale)
    return pipe.codec.encode_raxels(images.float().to(pipe.device))


def _run(
    pipe: Pipeline, video0: Tensor, raxel0: Tensor, mask: TaskMask, steps: int, generator, on_step=None
) -> tuple[Tensor, Tensor]:
    if steps < 1:
        raise ValueError("steps must be at least 1")
    with pipe.autocast():
        v, r = sample(pipe.model, video0, raxel0, mask, steps, pipe.cfg.shift, generator, on_step=on_step)
    return v.float(), r.float()


def _decode_cameras(pipe: Pipeline, raxel_latents: Tensor) -> tuple[Cameras, Tensor]:
    """Sampled camera latents -> (Cameras with intrinsics for the frame size, decoded camera images), on the CPU."""
    maps = pipe.codec.decode_raxels(raxel_latents).float().cpu()
    if pipe.cfg.camera_encoding != "raxel":
        from .plucker import plucker_to_cameras

        cams = plucker_to_cameras(maps.double())
    else:
        maps = maps.clamp(-1, 1)
        cams = raxels_to_cameras(
            maps.double(), max_points=pipe.cfg.decode_points, intrinsics_model=pipe.cfg.intrinsics_model
        )
    if (cams.height, cams.width) != (pipe.cfg.height, pipe.cfg.width):  # raxels made at raxel_scale
        cams = cams.resized(pipe.cfg.height, pipe.cfg.width)
    return cams, maps


@torch.no_grad()
def estimate_trajectory(
    pipe: Pipeline,
    video: Tensor,
    steps: int = 2,
    generator: torch.Generator | None = None,
    on_step=None,
    window: int | None = None,
):
    """video [B,F,3,H,W] in [-1, 1] -> (canonical Cameras, decoded raxel images [B,F,3,H,W]).

    A clip longer than `window` frames (default: the longest clip the model was trained on) is estimated as
    interleaved subsets of at most that length, all in one sampler batch, and merged (`subsets.py`); each frame's
    raxel image is then its own subset's, whose origins are in that subset's scale."""
    video = _check_frames(pipe, video, "video")
    B, F = video.shape[:2]
    plan = interleaved_subsets(F, _window(pipe, window))
    if len(plan) == 1:
        return _estimate_clips(pipe, video, steps, generator, on_step)
    S, L = len(plan), len(plan[0])
    parts = video[:, torch.tensor(plan)].transpose(0, 1).reshape(S * B, L, *video.shape[2:])
    cams, raxels = _estimate_clips(pipe, parts, steps, generator, on_step)
    cams, _ = canonicalise(cams)  # each subset's decoded frame 0 exactly the identity, which the merge assumes
    c2w, K = merge_subsets(cams.c2w.view(S, B, L, 4, 4), cams.K.view(S, B, L, 3, 3), plan, F)
    raxels = own_frames(raxels.view(S, B, L, *raxels.shape[2:]), plan, F)
    canon, _ = canonicalise(Cameras(K, c2w, cams.height, cams.width))  # farthest centre back at distance 1
    return canon, raxels


def _estimate_clips(pipe: Pipeline, video: Tensor, steps: int, generator, on_step) -> tuple[Cameras, Tensor]:
    B, F = video.shape[:2]
    Fc = _codec_length(pipe, F)
    if Fc > F:  # the last frame held still
        video = torch.cat([video, video[:, -1:].expand(-1, Fc - F, -1, -1, -1)], 1)
    v0 = pipe.codec.encode_video(video.to(pipe.device))
    r0 = _blank_camera_latents(pipe, B, Fc)
    mask = task_mask("estimate", B, v0.shape[2], Fc, device=pipe.device)
    _, r = _run(pipe, v0, r0, mask, steps, generator, on_step)
    return _decode_cameras(pipe, r[:, :, :F])


def _codec_length(pipe: Pipeline, frames: int) -> int:
    """The clip length the codec takes for `frames` frames (Wan VAE: 1 + 4k). The tasks pad a clip to it by holding
    the last frame (and camera) still, and drop what the padding gives back."""
    m = pipe.codec.frame_multiple
    return 1 + -(-(frames - 1) // m) * m


def _video_latents_with_inputs(pipe: Pipeline, images: Tensor, num_frames: int) -> tuple[Tensor, int]:
    """Latents of a clip of num_frames frames (the codec's length, `_codec_length`) whose first k frames are
    `images` (the rest blank), and how many latent frames the images fill completely (those are given clean)."""
    B, k = images.shape[:2]
    if not 1 <= k < num_frames:
        raise ValueError(f"need between 1 and {num_frames - 1} input images, got {k}")
    clip = torch.zeros(B, _codec_length(pipe, num_frames), 3, pipe.cfg.height, pipe.cfg.width, device=pipe.device)
    clip[:, :k] = images.to(pipe.device)
    v0 = pipe.codec.encode_video(clip)
    # Latent 0 holds frame 0; latent j >= 1 holds frames (j-1)*tf+1 .. j*tf.
    return v0, 1 + (k - 1) // pipe.codec.temporal_factor


@torch.no_grad()
def generate_video(
    pipe: Pipeline,
    images: Tensor,
    cameras: Cameras,
    steps: int = 20,
    generator: torch.Generator | None = None,
    on_step=None,
    window: int | None = None,
) -> Tensor:
    """Input image(s) [B,k,3,H,W] + a trajectory of F cameras (any world frame) -> video [B,F,3,H,W].

    A trajectory longer than `window` frames (default: the longest clip the model was trained on) is generated in
    `generation_windows`, each from the last frame of the one before, its cameras relative to that frame at the
    whole trajectory's canonical scale."""
    images = _check_frames(pipe, images, "images")
    if (cameras.height, cameras.width) != (pipe.cfg.height, pipe.cfg.width):
        cameras = cameras.resized(pipe.cfg.height, pipe.cfg.width)
    canon, _ = canonicalise(cameras.to(torch.float64))
    B, F = images.shape[0], canon.c2w.shape[1]
    if canon.c2w.shape[0] not in (1, B):
        raise ValueError(f"{canon.c2w.shape[0]} trajectories for {B} image sets")
    video = images
    for start, end in generation_windows(pipe, F, images.shape[1], window):
        part = canon.frames(slice(start, end))
        if start > 0:  # the window's first camera becomes the identity; the scale stays the whole trajectory's
            part = Cameras(part.K, invert_rigid(part.c2w[:, :1]) @ part.c2w, part.height, part.width)
        given = images if start == 0 else video[:, start : start + 1]
        video = torch.cat([video[:, :start], _generate_clip(pipe, given, part, steps, generator, on_step)], 1)
    return video


def generation_windows(
    pipe: Pipeline, frames: int, inputs: int = 1, window: int | None = None
) -> list[tuple[int, int]]:
    """The [start, end) frame spans `generate_video` samples one after another (one span up to `window` frames)."""
    return consecutive_windows(frames, _window(pipe, window), inputs)


def _window(pipe: Pipeline, window: int | None) -> int:
    """The longest run of frames the model takes at once: by default the longest clip it was trained on."""
    return max(pipe.cfg.train_frames) if window is None else window


def _generate_clip(pipe: Pipeline, images: Tensor, cams: Cameras, steps: int, generator, on_step) -> Tensor:
    """One sampler pass; cams [1 or B, F] with the first camera the identity, at any scale."""
    B, F = images.shape[0], cams.c2w.shape[1]
    Fc = _codec_length(pipe, F)
    cams = cams.frames(torch.arange(Fc).clamp(max=F - 1))  # the last camera held still
    r0 = _camera_latents(pipe, cams).expand(B, -1, -1, -1, -1)
    v0, cond = _video_latents_with_inputs(pipe, images, F)
    mask = task_mask("generate", B, v0.shape[2], Fc, cond_video=cond, device=pipe.device)
    v, _ = _run(pipe, v0, r0, mask, steps, generator, on_step)
    return pipe.codec.decode_video(v, F).float().cpu().clamp(-1, 1)


def default_intrinsics(height: int, width: int, hfov_deg: float = 75.0) -> Tensor:
    if not 0 < hfov_deg < 180:  # beyond these the focal length is negative or infinite, not a pinhole camera
        raise ValueError(f"horizontal field of view must be between 0 and 180 degrees, got {hfov_deg}")
    f = width / 2 / math.tan(math.radians(hfov_deg) / 2)
    return intrinsics(torch.tensor(f), torch.tensor(f), torch.tensor(width / 2), torch.tensor(height / 2)).double()


@torch.no_grad()
def generate_joint(
    pipe: Pipeline,
    images: Tensor,
    num_frames: int,
    steps: int = 20,
    K: Tensor | None = None,
    generator: torch.Generator | None = None,
    on_step=None,
) -> tuple[Tensor, Cameras, Tensor]:
    """Input image(s) [B,k,3,H,W] -> (video [B,F,3,H,W], canonical Cameras, decoded raxels).

    With intrinsics K (pixels, [3,3]) the first camera (identity pose) is given clean; without, it is sampled too
    and the model infers the intrinsics."""
    images = _check_frames(pipe, images, "images")
    B, Fc = images.shape[0], _codec_length(pipe, num_frames)
    v0, cond = _video_latents_with_inputs(pipe, images, num_frames)
    r0 = _blank_camera_latents(pipe, B, Fc)
    cond_raxel = 0
    if K is not None:
        identity = torch.eye(4, dtype=torch.float64).expand(B, 1, 4, 4)
        first = Cameras(K.double().expand(B, 1, 3, 3), identity, pipe.cfg.height, pipe.cfg.width)
        r0[:, :, :1] = _camera_latents(pipe, first)
        cond_raxel = 1
    mask = task_mask("joint", B, v0.shape[2], Fc, cond_video=cond, cond_raxel=cond_raxel, device=pipe.device)
    v, r = _run(pipe, v0, r0, mask, steps, generator, on_step)
    cams, raxels = _decode_cameras(pipe, r[:, :, :num_frames])
    return pipe.codec.decode_video(v, num_frames).float().cpu().clamp(-1, 1), cams, raxels


@torch.no_grad()
def self_consistency(
    pipe: Pipeline,
    video: Tensor,
    estimate_steps: int = 2,
    generate_steps: int = 20,
    generator: torch.Generator | None = None,
    on_step=None,
    estimate: tuple[Cameras, Tensor] | None = None,
) -> dict:
    """Closed loop: estimate V's poses, regenerate V' along them from V's first frame, compare V with V' (PSNR,
    SSIM) and V's estimated poses with V''s (pairwise rotation error, RRA@15, AUC@30).

    estimate: V's (cameras, raxels) from `estimate_trajectory` if already computed (skips that step)."""
    from .eval.pose import pose_metrics
    from .eval.video import psnr, ssim

    video = _check_frames(pipe, video, "video")
    if estimate is None:
        estimate = estimate_trajectory(pipe, video, estimate_steps, generator, on_step)
    cams, raxels = estimate
    regen = generate_video(pipe, video[:, :1], cams, generate_steps, generator, on_step)
    cams2, _ = estimate_trajectory(pipe, regen, estimate_steps, generator, on_step)
    pm = pose_metrics(cams2.c2w, cams.c2w)
    later = slice(1, None)  # frame 0 is given, not generated
    return {
        "cameras": cams,
        "cameras_regenerated": cams2,
        "raxels": raxels,
        "video_regenerated": regen,
        "metrics": {
            "psnr": psnr(regen[:, later], video[:, later]),
            "ssim": ssim(regen[:, later], video[:, later]),
            "pose_mean_rot_err_deg": pm["mean_rot_err_deg"],
            "pose_RRA@15": pm["RRA@15"],
            "pose_AUC@30": pm["AUC@30"],
        },
    }
