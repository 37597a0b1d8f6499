"""What one training step draws, and the batches of the steps ahead, made by loader workers while the model trains.

Every random choice of step s (clip length, clips, tasks, noise levels, noise) comes from generators seeded by
(seed, s), drawn for the whole global batch; each process then takes its slice. So the batches do not depend on
which process or worker makes them, nor on when."""

from __future__ import annotations

import traceback

import torch
from torch.utils.data import DataLoader, Dataset

from .data.batches import CAMERA_CHANNELS
from .data.sources import ClipSource
from .flow import TASKS, TaskMask, sample_train_t, task_mask
from .train_config import TrainConfig


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def step_frames(cfg: TrainConfig, step: int) -> int:
    if not cfg.frames_choices:
        return cfg.frames
    g = step_generator(cfg.seed + 7919, step)
    return cfg.frames_choices[int(torch.randint(len(cfg.frames_choices), (1,), generator=g))]


def latent_shapes(cfg: TrainConfig, codec, frames: int):
    channels = CAMERA_CHANNELS[cfg.camera_encoding]
    s = codec.spatial_factor
    hr, wr = cfg.raxel_size()
    return (
        (codec.latent_channels(3), codec.latent_frames(frames), cfg.height // s, cfg.width // s),
        (codec.latent_channels(channels), frames, hr // s, wr // s),
    )


def draw_step(cfg: TrainConfig, step: int, latent_shapes) -> dict:
    """All randomness of one global step."""
    g = step_generator(cfg.seed, step)
    B = cfg.batch_size
    if cfg.clip_seeds:
        idx = torch.randint(len(cfg.clip_seeds), (B,), generator=g)
        seeds = [cfg.clip_seeds[i] for i in idx.tolist()]
    else:
        seeds = torch.randint(0, 2**31 - 1, (B,), generator=g).tolist()
    tasks = torch.multinomial(torch.tensor(cfg.task_probs), B, replacement=True, generator=g).tolist()
    (cv, tv_, hv, wv), (cr, tr_, hr, wr) = latent_shapes
    t_video = sample_train_t(B, g, top_share=cfg.top_noise_share)
    t_raxel = sample_train_t(B, g, top_share=cfg.top_noise_share)
    if cfg.pure_noise_share > 0:  # drawn only then: the other settings' draws stay those of the shipped runs
        t_raxel = torch.where(torch.rand(B, generator=g) < cfg.pure_noise_share, 1.0, t_raxel)
    return {
        "seeds": seeds,
        "tasks": [TASKS[i] for i in tasks],
        "t_video": t_video,
        "t_raxel": t_raxel,
        "eps_video": torch.randn(B, cv, tv_, hv, wv, generator=g),
        "eps_raxel": torch.randn(B, cr, tr_, hr, wr, generator=g),
    }


def masks_for(tasks: list[str], tv: int, tr: int, cond: int, device=None) -> TaskMask:
    ms = [task_mask(t, 1, tv, tr, cond_video=cond, device=device) for t in tasks]
    return TaskMask(torch.cat([m.video for m in ms]), torch.cat([m.raxel for m in ms]))


class StepData(Dataset):
    """Item i: step start + i as (step, clip length, its draws, this process's slice of its clips)."""

    def __init__(self, cfg: TrainConfig, source: ClipSource, shapes: dict, start: int, part: slice):
        self.cfg, self.source, self.shapes, self.start, self.part = cfg, source, shapes, start, part

    def __len__(self) -> int:
        return self.cfg.steps - self.start

    def __getitem__(self, i: int):
        step = self.start + i
        try:
            frames = step_frames(self.cfg, step)
            draws = draw_step(self.cfg, step, self.shapes[frames])
            return step, frames, draws, self.source.batch(draws["seeds"][self.part], frames)
        except Exception as e:  # e.g. a corrupt clip: handed to the training process to raise as itself (`_steps`)
            e.add_note(traceback.format_exc())
            return e


def _as_is(item):
    return item


def step_batches(cfg: TrainConfig, source: ClipSource, shapes: dict, start: int, part: slice):
    """The steps from `start` on, in order. With cfg.loader_workers > 0 that many worker processes prepare the
    next steps (clips read and resized, camera images, noise) while the model trains on this one; 0 makes each
    in the training process when it is due. The same numbers either way."""
    data = StepData(cfg, source, shapes, start, part)
    workers = cfg.loader_workers
    # Forked workers inherit the source; a real-data source holds per-clip readers that do not pickle, which the
    # forkserver default of newer Pythons would need.
    loader = DataLoader(
        data,
        batch_size=None,
        collate_fn=_as_is,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        multiprocessing_context="fork" if workers else None,
    )
    return _steps(loader)


def _steps(loader):
    # A worker's own exception would reach us as the loader's "Caught X in DataLoader worker process 0", with the
    # reason lost from the one-line error.
    for item in loader:
        if isinstance(item, Exception):
            raise item
        yield item
