import pytest
import torch

from raxels.cameras import Cameras, canonicalise
from raxels.data.batches import make_batch
from raxels.data.dl3dv import load_dl3dv_clip
from raxels.data.realestate10k import load_re10k_clip
from raxels.data.sources import ClipEntry, FolderSource, SynthRoomsSource, clip_source, pick_frames
from raxels.errors import InputError


def _entries(*lengths):
    return [ClipEntry(f"c{i}", n, None) for i, n in enumerate(lengths)]


def test_pick_frames_fits_the_clip_and_depends_only_on_the_seed():
    entries = _entries(3, 20, 9)
    picks = [pick_frames(seed, entries, 5, max_stride=4) for seed in range(300)]
    assert picks == [pick_frames(seed, entries, 5, max_stride=4) for seed in range(300)]
    for i, start, stride in picks:
        assert i in (1, 2)  # the 3-frame clip cannot give 5 frames
        assert 1 <= stride <= min(4, (entries[i].frames - 1) // 4)
        assert 0 <= start and start + 4 * stride < entries[i].frames
    assert {s for i, _, s in picks if i == 1} == {1, 2, 3, 4}  # every stride the 20-frame clip allows
    assert {s for i, _, s in picks if i == 2} == {1, 2}
    assert {start for i, start, _ in picks if i == 1} == set(range(16))  # stride 1: starts 0..15
    assert {s for _, _, s in (pick_frames(seed, entries, 5, 1) for seed in range(50))} == {1}


def test_folder_source_rejects_lengths_no_clip_has():
    with pytest.raises(ValueError, match="no training clip has 21 frames"):
        FolderSource(_entries(3, 20), (4, 21))
    with pytest.raises(ValueError, match="no training clips"):
        FolderSource([], (4,))


def test_re10k_source_reads_the_drawn_frames(re10k_pairs):
    root = re10k_pairs[0][0].parents[2]
    source = clip_source("re10k", (8,), 32, 48, str(root), max_stride=2)
    assert len(source.entries) == len(re10k_pairs)
    seeds = [5, 17, 29]
    batch = source.batch(seeds, 8)
    assert batch.frames.shape == (3, 8, 3, 32, 48) and batch.camera_images.shape == (3, 8, 3, 32, 48)
    # The same frames and cameras as loading the whole clip and taking the drawn ones.
    for k, seed in enumerate(seeds):
        i, start, stride = pick_frames(seed, source.entries, 8, 2)
        vid, pose = re10k_pairs[i]
        whole = load_re10k_clip(vid, pose, (32, 48))
        idx = slice(start, start + 7 * stride + 1, stride)
        assert torch.equal(batch.frames[k], whole.frames[idx])
        canon, _ = canonicalise(whole.cameras.frames(idx).to(torch.float64))
        assert torch.allclose(batch.cameras.c2w[k], canon.c2w[0].float(), atol=1e-5)
        assert torch.allclose(batch.cameras.K[k], canon.K[0].float())
    assert torch.equal(source.batch(seeds, 8).frames, batch.frames)  # again (now from the cache): the same


def test_dl3dv_source_reads_the_drawn_frames(dl3dv_scene):
    scene, clip = dl3dv_scene
    source = clip_source("dl3dv", (4,), 32, 32, str(scene.parent), raxel_scale=0.5, max_stride=2)
    batch = source.batch([1, 2], 4)
    assert batch.frames.shape == (2, 4, 3, 32, 32) and batch.camera_images.shape == (2, 4, 3, 16, 16)
    i, start, stride = pick_frames(2, source.entries, 4, 2)
    want = load_dl3dv_clip(scene, 4, stride, start, size=(32, 32))
    assert torch.equal(batch.frames[1], want.frames)
    assert torch.equal(source.batch([1, 2], 4).camera_images, batch.camera_images)

    with pytest.raises(InputError, match="no scene folders"):
        clip_source("dl3dv", (4,), 32, 32, str(scene / "images"))


def test_synthrooms_source_is_the_rendered_batch():
    from raxels.data.batches import synthrooms_batch
    from raxels.data.synthrooms import SynthRoomsConfig

    got = SynthRoomsSource(32, 32).batch([3, 4], 4)
    want = synthrooms_batch([3, 4], SynthRoomsConfig(frames=4, height=32, width=32))
    assert torch.equal(got.frames, want.frames) and torch.equal(got.camera_images, want.camera_images)


def test_raxel_scale_makes_smaller_camera_images_of_the_same_cameras():
    from raxels.data.synthrooms import SynthRoomsConfig, synth_clip

    c = synth_clip(1, SynthRoomsConfig(frames=3, height=32, width=32))
    cams = Cameras(c.cameras.K, c.cameras.c2w, 32, 32)
    full, half = make_batch(c.frames[None], cams), make_batch(c.frames[None], cams, scale=0.5)
    assert half.camera_images.shape[-2:] == (16, 16)
    # Pixel (i, j) of the half-size image sees the ray through the centre of the 2x2 block it covers.
    assert torch.allclose(half.camera_images, full.camera_images.unflatten(-1, (16, 2)).unflatten(-3, (16, 2))
                          .mean((-1, -3)), atol=2e-3)
