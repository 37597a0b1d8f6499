"""Training settings: `TrainConfig` (a typed dataclass, checked before anything is built or written) and the
presets that train the shipped model (`make checkpoint`)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, fields, replace

import torch

from .codec import WAN_FRAME_MULTIPLE, check_codec, wan_vae_factors
from .data.batches import CAMERA_CHANNELS, camera_image_size
from .data.sources import check_data
from .flow import TASKS
from .io.atomic import check_output
from .model import model_config
from .model.wan_init import check_wan_config


def cxx_compiler() -> str | None:
    """The C++ compiler inductor would build CPU kernels with, None if it is not on PATH. Inductor's own list
    (`config.cpp.cxx`: $CXX as it was at import, else g++; clang++ on macOS), not a second guess at it."""
    from torch._inductor import config

    return next((name for name in config.cpp.cxx if name and shutil.which(name)), None)


@dataclass
class TrainConfig:
    model: str = "tiny"
    # "synthrooms" (rendered on the fly), or real clips under data_root: "re10k" (mp4 + RealEstate10K camera txt)
    # or "dl3dv" (scene folders with transforms.json; dl3dv_images names a downsampled copy such as images_4).
    data: str = "synthrooms"
    data_root: str = ""
    dl3dv_images: str = ""
    max_stride: int = 1  # real clips: every s-th frame, s drawn from 1..max_stride as far as the clip allows
    # "pixel" (space-to-depth by codec_factor, no weights) or "wan-vae" (the Wan VAE in the folder `vae`, frozen).
    codec: str = "pixel"
    vae: str = ""
    raxel_scale: float = 1.0  # raxel images at this fraction of the frame size (the paper: 0.5 with the VAE)
    camera_encoding: str = "raxel"  # or "plucker" (the ablation)
    frames: int = 8
    frames_choices: tuple[int, ...] = ()  # if set, each step draws its clip length from these
    height: int = 64
    width: int = 64
    codec_factor: int = 4
    batch_size: int = 4  # global, over all processes
    steps: int = 2000
    lr: float = 3e-4
    warmup: int = 50
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    task_probs: tuple[float, float, float, float] = (0.4, 0.3, 0.2, 0.1)  # TASKS order
    cond_frames: int = 1
    seed: int = 0
    out: str = "runs/tiny"
    ckpt_every: int = 250
    log_every: int = 10
    clip_seeds: tuple[int, ...] = ()  # train on these clips only (overfitting tests); empty: fresh clips
    model_overrides: dict = field(default_factory=dict)
    # The inference vocabulary (device.PRECISIONS): "bf16" runs forward passes under bfloat16 autocast (weights,
    # optimiser and EMA stay fp32), "auto" picks it where the hardware multiplies bf16 natively. Measured on this
    # project's 2-core CPU (avx512_bf16): bf16 matmuls 4.3x fp32, a tiny-model training step 1.45-1.6x faster.
    mixed_precision: str = "fp32"
    # Recompute each block's activations in the backward pass instead of keeping them: the Wan-sized configs at
    # video resolution do not fit a GPU's memory otherwise. The same numbers, more compute.
    gradient_checkpointing: bool = False
    # torch.compile the model's forward (and so its backward) for training, one graph per clip length: on the
    # tiny model's CPU steps elementwise work under autocast costs more than the matmuls, and compiling fuses it.
    compile: bool = False
    # Under several processes, shard the parameters, gradients, optimiser state and EMA over them (FSDP, `sharding`)
    # instead of a whole copy on each (DDP): the wan-14b configuration does not fit one GPU otherwise. The same
    # numbers as DDP. One process has nothing to shard and trains as before.
    fsdp: bool = False
    # Checkpoints as a folder that each process writes its shard of (torch.distributed.checkpoint), instead of one
    # file of whole tensors gathered into the first process (`train_checkpoints`): for wan-14b under FSDP that file
    # would be 320 GB in one process's memory. Either kind resumes on any number of processes.
    sharded_checkpoints: bool = False
    # Worker processes that prepare the next steps' batches (clips read and resized, camera images, noise) while the
    # model trains; 0 makes each batch in the training process when it is due. Real video decoding wants a few.
    loader_workers: int = 0
    # Each process's share of the batch in this many pieces, one forward and backward each, the gradients summed:
    # the same step in less activation memory (the Wan-sized configs at video resolution fit few clips at once).
    grad_accum: int = 1
    # > 0: the model gets a pose head and this weight on the auxiliary pose loss (`aux_pose`), a training aid for
    # reading the camera motion from the video; 0 keeps the plain objective of the paper.
    pose_loss_weight: float = 0.0
    # Weight of the camera centres' errors in that loss against the rotations' (1: equal per whitened entry).
    pose_centre_weight: float = 1.0
    # A training checkpoint (an earlier run's `checkpoint.safetensors` or `checkpoint.dcp`) whose weights, EMA and
    # optimiser state this run starts from; its step count and learning-rate schedule start afresh: a second stage.
    init_from: str = ""
    # A diffusers WanTransformer3DModel folder (Wan 2.1) the video stream starts from, as the paper starts from Wan
    # 2.1 14B (`model.wan_init`); its shapes must be the model config's (e.g. wan-1.3b with Wan 2.1 T2V 1.3B).
    init_video_from: str = ""
    # Extra share of noise levels drawn from the top band U(0.9, 1) (`flow.sample_train_t`), where few-step pose
    # estimation starts and the raxels tell least, so the model must read the video.
    top_noise_share: float = 0.0
    # Share of the samples whose raxels are pure noise, t = 1 exactly, where 2-step estimation starts. Even at t = 0.9
    # the raxels give a camera centre away: it is one value over all of a frame's pixels, so averaging them beats
    # the noise; only at t = 1 must the centre come from the video (docs/experiments.md, "The second stage").
    pure_noise_share: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        d = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**d)

    def check(self) -> None:
        """ValueError naming the first setting that cannot train; run before anything is built or written."""
        check_output(self.out, folder=True)
        if self.camera_encoding not in CAMERA_CHANNELS:
            raise ValueError(f"unknown camera_encoding {self.camera_encoding!r}; choose from {sorted(CAMERA_CHANNELS)}")
        for name in ("steps", "batch_size", "log_every", "ckpt_every", "cond_frames", "codec_factor", "max_stride",
                     "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        # lr 0: a frozen run (tests)
        for name in ("lr", "warmup", "pose_loss_weight", "pose_centre_weight", "loader_workers"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("top_noise_share", "pure_noise_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if len(self.task_probs) != len(TASKS) or min(self.task_probs) < 0 or sum(self.task_probs) <= 0:
            raise ValueError(f"task_probs must be {len(TASKS)} non-negative weights for {TASKS}, got {self.task_probs}")
        # Generation needs a frame beyond the given ones.
        for f in self.frames_choices or (self.frames,):
            if f <= self.cond_frames:
                raise ValueError(f"frames={f} leaves no frame to generate beyond cond_frames={self.cond_frames}")
        check_data(self.data, self.data_root)
        spatial = self.codec_factor
        vae = check_codec(self.codec, self.camera_encoding, self.vae)
        if vae is not None:
            spatial, _ = wan_vae_factors(vae)
            for f in self.frames_choices or (self.frames,):
                if (f - 1) % WAN_FRAME_MULTIPLE:
                    raise ValueError(f"frames={f}: the Wan VAE takes 1 + {WAN_FRAME_MULTIPLE}k frames")
        if not 0 < self.raxel_scale <= 1:
            raise ValueError(f"raxel_scale must be in (0, 1], got {self.raxel_scale}")
        # Frames (and raxel images) become latent pixels of `spatial` pixels each, then patches of the model's size.
        patch = model_config(self.model, **self.model_overrides).patch_size
        multiple = (spatial * patch[1], spatial * patch[2])
        for what, h, w in (("frame", self.height, self.width), ("raxel image", *self.raxel_size())):
            if h < 1 or w < 1 or h % multiple[0] or w % multiple[1]:
                raise ValueError(
                    f"{what} size {w}x{h}: width and height must be positive multiples of"
                    f" {multiple[1]} and {multiple[0]} (the codec's {spatial} times the model's patch size)"
                )
        if self.init_video_from:
            if self.init_from:
                raise ValueError("init_video_from and init_from exclude each other: a second stage has its weights")
            if vae is None:
                raise ValueError("init_video_from: Wan's video stream reads Wan VAE latents (codec wan-vae)")
            # The model's input width is the VAE's latent channels (`train.build`), whatever the named config says.
            shape = replace(model_config(self.model, **self.model_overrides), in_channels=int(vae["z_dim"]))
            check_wan_config(self.init_video_from, shape)
        if self.compile and not torch.cuda.is_available() and not cxx_compiler():
            raise ValueError("compile: torch.compile on the CPU needs a C++ compiler (g++, or $CXX); train without it")

    def raxel_size(self) -> tuple[int, int]:
        """(height, width) of the raxel images."""
        return camera_image_size(self.height, self.width, self.raxel_scale)


# `make checkpoint`: the shipped tiny model, first stage. 32x32 clips of 4, 8 or 16 frames, bf16 autocast (0.52 s/step
# here against 0.82 in fp32): 100 minutes on a 2-core CPU; with the speed-ups that came later and compiled, 74 in one
# sitting on a machine 1.27-1.53x slower than that one, 89 there on another day (README, "Time"). Pose estimation
# weighted up and the auxiliary pose loss on: without it the model had not learnt to read the video
# (docs/experiments.md, "Probing the coupling"). The same preset with pose_centre_weight=8 and
# model_overrides={"pose_head_norm": False, "motion_stem": 32} was trained once and not shipped: no sideways
# translation either (docs/experiments.md, "Why translations fail"). 11000 steps because 6000 (the whole `make
# checkpoint` in 86 minutes) left a model that barely read rotations from the frames, and the second stage after it
# learnt less translation (docs/experiments.md, "A shorter first stage").
_FIRST_STAGE = dict(
    steps=11000,
    batch_size=8,
    frames_choices=(4, 8, 16),
    height=32,
    width=32,
    lr=4e-4,
    warmup=100,
    ckpt_every=200,
    task_probs=(0.5, 0.25, 0.15, 0.1),
    mixed_precision="bf16",
    # Compiled: steps about a quarter shorter here once each clip length's graph is built (README, "Time").
    compile=True,
    pose_loss_weight=0.5,
    out="runs/checkpoint",
)

# The second stage of the model shipped before the current one (about 15 minutes), from the first one's final
# state: mostly pose estimation, 8-frame clips, half the noise levels redrawn near t = 1 (where 2-step estimation
# starts and only the video tells the pose) and the centres weighted 4x in the pose loss. It sharpened rotations
# and left translation and generation as they were (docs/experiments.md, "The pose-heavy stage"); the shipped
# second stage (checkpoint-pure-noise) starts from these settings.
_SECOND_STAGE = dict(
    _FIRST_STAGE,
    init_from="runs/checkpoint/checkpoint.safetensors",
    steps=2000,
    frames=8,
    frames_choices=(),
    lr=1e-4,
    warmup=20,
    task_probs=(0.7, 0.2, 0.05, 0.05),
    pose_centre_weight=4.0,
    top_noise_share=0.5,
    seed=2,  # new clips and noise: seed 0 would replay the first stage's
    out="runs/checkpoint_finetune",
)

PRESETS = {
    "checkpoint": _FIRST_STAGE,
    "checkpoint-finetune": _SECOND_STAGE,
    # The second stage of the shipped model, from the first one's exported model: 8-frame clips, mostly pose
    # estimation, 70% of the raxel noise levels exactly 1, where the raxels tell nothing and the camera centres must
    # come from the video, the centres weighted 8x. Here the model learns translation (held-out AUC@30 0.126 ->
    # 0.620); with U(0.9, 1) (checkpoint-finetune) it had not, as the raxels averaged over a frame give its centre
    # away (docs/experiments.md, "The second stage"). 6000 steps: 87 minutes eager on a machine 2.4x slower than the
    # first stage's, 36 and 45 compiled on one 1.27-1.53x slower (README, "Time"); 2000 and 4000 steps reached 0.499
    # and 0.586.
    "checkpoint-pure-noise": dict(
        _SECOND_STAGE,
        init_from="runs/checkpoint/model",
        steps=6000,
        lr=2e-4,
        ckpt_every=250,
        pose_centre_weight=8.0,
        top_noise_share=0.0,
        pure_noise_share=0.7,
        seed=3,
        out="runs/checkpoint_pure_noise",
    ),
}
