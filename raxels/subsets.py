"""Clips longer than the model was trained on, split into parts of a length it knows: interleaved subsets to
estimate a trajectory, consecutive windows to generate a video.

Estimation. A clip of F frames becomes S subsets of equal length <= `window`: each holds frame 0 and every S-th
frame after it (frames 1, 1+S, ... in the first, 2, 2+S, ... in the second), so each spans the whole clip as a clip
of training length would, and all share frame 0 as their canonical first camera. Estimated separately, their
trajectories then differ only in scale (each is normalised so that its own farthest centre is at distance 1);
`merge_subsets` fits each subset's scale to the first subset's trajectory and interleaves the frames back.

Why not consecutive windows: those chain relative poses from window to window, so errors accumulate, and each
window shows only a fraction of the clip's motion, unlike a training clip. The whole clip at once loses accuracy
beyond the training length (README, "Long clips": RRA@15 0.86 at 32 frames, 0.94 in subsets).

Generation. Interleaved subsets would be sampled apart from each other, as so many different videos; so a long
trajectory is generated window after window, each starting from the last frame of the one before
(`consecutive_windows`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def interleaved_subsets(frames: int, window: int) -> list[list[int]]:
    """Frame indices of S subsets, each of the same length <= window, each starting at frame 0.

    Frames 1 .. F-1 are dealt out in turn (frame j to subset (j - 1) % S); a subset that comes out one short also
    takes the last frame, so that all have one length and run as one batch."""
    if window < 2:
        raise ValueError(f"window must be at least 2 frames, got {window}")
    if frames <= window:
        return [list(range(frames))]
    S = math.ceil((frames - 1) / (window - 1))
    classes = [list(range(1 + r, frames, S)) for r in range(S)]
    longest = len(classes[0])
    return [[0, *c, *([frames - 1] if len(c) < longest else [])] for c in classes]


def own_subset(frames: int, subsets: list[list[int]]) -> tuple[Tensor, Tensor]:
    """For each frame, the first subset that holds it and its position there: (subset [F], position [F]).

    Frame 0 is in all of them, the last frame also in the short subsets that borrow it, which come after the one it
    was dealt to: the first holder is the subset each frame was dealt to."""
    subset = torch.zeros(frames, dtype=torch.long)
    position = torch.zeros(frames, dtype=torch.long)
    for s, idx in reversed(list(enumerate(subsets))):  # earlier subsets overwrite later ones
        for p, j in enumerate(idx):
            subset[j], position[j] = s, p
    return subset, position


def own_frames(x: Tensor, subsets: list[list[int]], frames: int) -> Tensor:
    """[S, B, L, ...] per-subset values -> [B, F, ...], each frame's taken from its own subset (`own_subset`)."""
    subset, position = own_subset(frames, subsets)
    # Advanced indices on dims 0 and 2 with a slice between: the frame dimension comes first.
    return x[subset, :, position].transpose(0, 1)


def merge_subsets(c2w: Tensor, K: Tensor, subsets: list[list[int]], frames: int) -> tuple[Tensor, Tensor]:
    """Canonical trajectories of the subsets -> one trajectory of the whole clip.

    c2w [S, B, L, 4, 4], K [S, B, L, 3, 3]: each subset's estimate, its first camera (frame 0) the identity and
    centres in its own scale. Returns (c2w [B, F, 4, 4], K [B, F, 3, 3]) in the first subset's scale: the others
    are scaled by the least-squares factor that puts their centres on the first subset's centres, linearly
    interpolated at their frames (a factor is never negative; a subset without motion keeps its zero centres)."""
    S, B = c2w.shape[:2]
    ref_t = torch.tensor(subsets[0], dtype=c2w.dtype, device=c2w.device)
    ref_c = c2w[0, :, :, :3, 3]  # [B, L, 3]
    c2w = c2w.clone()
    for s in range(1, S):
        t = torch.tensor(subsets[s][1:], dtype=c2w.dtype, device=c2w.device)
        k = torch.searchsorted(ref_t, t).clamp(1, len(subsets[0]) - 1)
        w = ((t - ref_t[k - 1]) / (ref_t[k] - ref_t[k - 1]))[None, :, None]  # > 1 past the last: extrapolates
        target = ref_c[:, k - 1] * (1 - w) + ref_c[:, k] * w
        c = c2w[s, :, 1:, :3, 3]
        scale = ((target * c).sum((1, 2)) / (c * c).sum((1, 2)).clamp_min(1e-12)).clamp_min(0)
        c2w[s, :, :, :3, 3] *= scale[:, None, None]
    return own_frames(c2w, subsets, frames), own_frames(K, subsets, frames)


def consecutive_windows(frames: int, window: int, given: int = 1) -> list[tuple[int, int]]:
    """[start, end) spans covering frames 0 .. frames-1, each of `window` frames but the last, each starting on the
    last frame of the one before; the first holds the `given` frames and at least one more.

    Full windows, not the new frames shared out evenly: on 30 held-out 32-frame SynthRooms clips the even split
    (spans of 11-12 frames) gave PSNR 18.83 dB, full windows (16, 16, 2) 19.08."""
    if window < 2:
        raise ValueError(f"window must be at least 2 frames, got {window}")
    spans, start, end = [], 0, min(frames, max(window, given + 1))
    while True:
        spans.append((start, end))
        if end >= frames:
            return spans
        start, end = end - 1, min(frames, end - 1 + window)
