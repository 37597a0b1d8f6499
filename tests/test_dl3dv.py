"""DL3DV scenes read as clips (raxels/data/dl3dv.py)."""

import pytest
import torch

from raxels.data.clips import resize_clip
from raxels.data.dl3dv import dl3dv_scenes, load_dl3dv_clip
from raxels.errors import InputError
from raxels.io import write_image


def test_frames_in_name_order_with_their_cameras(dl3dv_scene):
    scene, clip = dl3dv_scene
    got = load_dl3dv_clip(scene, frames=3, stride=2)
    idx = torch.tensor([0, 2, 4])  # the file lists them out of order; a clip is in frame-number order
    assert got.frames.shape == (3, 3, 48, 64) and got.name == "scene_a"
    assert (got.frames - clip.frames[idx]).abs().max() <= 1 / 127.5 + 1e-6  # png's 8 bits
    assert torch.allclose(got.cameras.c2w, clip.cameras.c2w[:, idx], atol=1e-6)
    assert torch.allclose(got.cameras.K, clip.cameras.K[:, idx], atol=1e-5)
    assert load_dl3dv_clip(scene, frames=16).frames.shape[0] == 6  # as many as there are


def test_downsampled_copy_scales_the_intrinsics(dl3dv_scene):
    scene, clip = dl3dv_scene
    got = load_dl3dv_clip(scene, frames=2, start=1, image_dir="images_2")
    assert (got.cameras.height, got.cameras.width) == (24, 32) and got.frames.shape[-2:] == (24, 32)
    assert torch.allclose(got.cameras.K, clip.cameras.K[:, 1:3] * torch.tensor([[0.5], [0.5], [1.0]]), atol=1e-5)
    sized = load_dl3dv_clip(scene, frames=2, size=(32, 32))
    assert sized.frames.shape[-2:] == (32, 32) and sized.cameras.width == 32
    # Each frame resized as it is read: the same frames and intrinsics as resizing the whole clip afterwards.
    whole = load_dl3dv_clip(scene, frames=2)
    frames, cams = resize_clip(whole.frames, whole.cameras, 32, 32)
    assert torch.equal(sized.frames, frames) and torch.equal(sized.cameras.K, cams.K)
    assert sized.frames.stride() == frames.stride()


def test_scene_listing(dl3dv_scene):
    scene, _ = dl3dv_scene
    assert dl3dv_scenes(scene) == [scene] and dl3dv_scenes(scene.parent) == [scene]


def test_bad_scenes_are_input_errors(dl3dv_scene, tmp_path):
    scene, clip = dl3dv_scene
    with pytest.raises(InputError, match="transforms file not found"):
        load_dl3dv_clip(tmp_path)
    with pytest.raises(InputError, match="fewer than 2"):
        load_dl3dv_clip(scene, start=5)
    with pytest.raises(InputError, match="image not found"):
        load_dl3dv_clip(scene, image_dir="images_8")
    with pytest.raises(InputError, match="no scene folders"):
        dl3dv_scenes(tmp_path)
    # A copy that is not the same picture resized, and one frame of another size.
    odd = tmp_path / "odd"
    (odd / "images").mkdir(parents=True)
    (odd / "transforms.json").write_text((scene / "transforms.json").read_text())
    for i in range(6):
        write_image(odd / "images" / f"frame_{i + 1:05d}.png", clip.frames[i][..., :40])
    with pytest.raises(InputError, match="not a resized copy"):
        load_dl3dv_clip(odd)
    write_image(odd / "images" / "frame_00001.png", clip.frames[0])
    with pytest.raises(InputError, match="the first frame has 64x48"):
        load_dl3dv_clip(odd)
