"""Where training clips come from: SynthRooms rendered on the fly, or real footage read from a folder
(RealEstate10K clips, DL3DV scenes; the paper trains on both).

A training step draws one seed per clip (`train.draw_step`); which clip and which of its frames follow from that
seed alone, so a resumed run and every data-parallel rank see exactly the batches of an unbroken one-process run.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..cameras import Cameras
from ..errors import InputError
from ..io.nerfstudio import read_transforms
from ..io.realestate10k import read_re10k
from .batches import Batch, make_batch, synthrooms_batch
from .clips import VideoClip
from .dl3dv import dl3dv_scenes, load_dl3dv_clip
from .realestate10k import load_re10k_clip, re10k_clip_pairs
from .synthrooms import SynthRoomsConfig

DATA_SOURCES = ("synthrooms", "re10k", "dl3dv")


class ClipSource(ABC):
    @abstractmethod
    def batch(self, seeds: list[int], frames: int) -> Batch:
        """One clip of `frames` frames per seed, resized to the training size, cameras canonical."""


@dataclass
class SynthRoomsSource(ClipSource):
    height: int
    width: int
    encoding: str = "raxel"
    raxel_scale: float = 1.0

    def batch(self, seeds: list[int], frames: int) -> Batch:
        cfg = SynthRoomsConfig(frames=frames, height=self.height, width=self.width)
        return synthrooms_batch(seeds, cfg, self.encoding, self.raxel_scale)


@dataclass
class ClipEntry:
    name: str
    frames: int  # how many frames (= cameras) the clip has
    load: Callable[[int, int, int], VideoClip]  # (start, stride, count) -> those frames at the training size


def long_enough(entries: list[ClipEntry], frames: int) -> list[int]:
    """Indices of the clips with at least `frames` frames."""
    return [i for i, e in enumerate(entries) if e.frames >= frames]


def pick_frames(
    seed: int, entries: list[ClipEntry], frames: int, max_stride: int, eligible: list[int] | None = None
) -> tuple[int, int, int]:
    """(entry index, start, stride) of a seed's clip: a clip long enough, a stride in 1..max_stride as far as the
    clip allows, a start where that run fits. eligible: `long_enough(entries, frames)`, if already known."""
    eligible = long_enough(entries, frames) if eligible is None else eligible
    g = torch.Generator().manual_seed(seed)
    i = eligible[int(torch.randint(len(eligible), (1,), generator=g))]
    stride = 1 + int(torch.randint(min(max_stride, (entries[i].frames - 1) // (frames - 1)), (1,), generator=g))
    start = int(torch.randint(entries[i].frames - (frames - 1) * stride, (1,), generator=g))
    return i, start, stride


class FolderSource(ClipSource):
    """Real clips, indexed once (names and frame counts); frames are read when a step draws them."""

    def __init__(
        self, entries: list[ClipEntry], frames: tuple[int, ...], encoding="raxel", raxel_scale=1.0, max_stride=1
    ):
        """frames: the clip lengths training will ask for, each checked here (before a run writes anything)."""
        if not entries:
            raise ValueError("no training clips")
        longest = max(e.frames for e in entries)
        if max(frames) > longest:
            raise ValueError(f"no training clip has {max(frames)} frames (the longest has {longest})")
        self.entries, self.encoding, self.raxel_scale, self.max_stride = entries, encoding, raxel_scale, max_stride
        # Once per clip length, not per drawn clip: a real data set has tens of thousands of clips.
        self.eligible = {f: long_enough(entries, f) for f in frames}

    def batch(self, seeds: list[int], frames: int) -> Batch:
        clips = []
        for seed in seeds:
            i, start, stride = pick_frames(seed, self.entries, frames, self.max_stride, self.eligible[frames])
            clips.append(self.entries[i].load(start, stride, frames))
        video = torch.stack([c.frames for c in clips])
        cams = Cameras(
            torch.cat([c.cameras.K for c in clips]),
            torch.cat([c.cameras.c2w for c in clips]),
            clips[0].cameras.height,
            clips[0].cameras.width,
        )
        return make_batch(video, cams, self.encoding, self.raxel_scale)


def re10k_entries(root: str | os.PathLike, size: tuple[int, int], cache_bytes: int = 2**30) -> list[ClipEntry]:
    """RealEstate10K clips (mp4 + camera txt) under root. An mp4 is decoded whole, so the most recently used
    decoded clips (at the training size) are kept, up to `cache_bytes` of frames."""
    pairs = re10k_clip_pairs(root)
    if not pairs:
        raise InputError(f"{root}: no RealEstate10K clips (an mp4 with a camera txt of the same name)")
    cache: OrderedDict[Path, VideoClip] = OrderedDict()

    def loader(video: Path, poses: Path):
        def load(start: int, stride: int, count: int) -> VideoClip:
            clip = cache.pop(video, None) or load_re10k_clip(video, poses, size)
            cache[video] = clip  # now the most recent
            while len(cache) > 1 and sum(c.frames.nbytes for c in cache.values()) > cache_bytes:
                cache.popitem(last=False)
            idx = slice(start, start + (count - 1) * stride + 1, stride)
            return VideoClip(clip.frames[idx], clip.cameras.frames(idx), clip.name)

        return load

    # The intrinsics do not matter for counting cameras; the frame count is checked against the video on loading.
    return [ClipEntry(v.stem, read_re10k(p, *size).cameras.c2w.shape[1], loader(v, p)) for v, p in pairs]


def dl3dv_entries(root: str | os.PathLike, size: tuple[int, int], image_dir: str = "") -> list[ClipEntry]:
    """DL3DV scenes (transforms.json + frames) under root; only the frames a step draws are read."""

    def loader(scene: Path):
        return lambda start, stride, count: load_dl3dv_clip(scene, count, stride, start, image_dir, size)

    return [ClipEntry(s.name, len(read_transforms(s / "transforms.json")[1]), loader(s)) for s in dl3dv_scenes(root)]


def check_data(data: str, root: str = "") -> None:
    """A one-line ValueError for data settings that cannot work, before anything is read."""
    if data not in DATA_SOURCES:
        raise ValueError(f"unknown data {data!r}; choose from {DATA_SOURCES}")
    if data != "synthrooms" and not (root and Path(root).is_dir()):
        raise ValueError(f"data {data!r} needs data_root, a folder of clips (got {root!r})")


def clip_source(
    data: str,
    frames: tuple[int, ...],
    height: int,
    width: int,
    root: str = "",
    encoding: str = "raxel",
    raxel_scale: float = 1.0,
    max_stride: int = 1,
    image_dir: str = "",
) -> ClipSource:
    check_data(data, root)
    if data == "synthrooms":
        return SynthRoomsSource(height, width, encoding, raxel_scale)
    size = (height, width)
    entries = re10k_entries(root, size) if data == "re10k" else dl3dv_entries(root, size, image_dir)
    return FolderSource(entries, frames, encoding, raxel_scale, max_stride)
