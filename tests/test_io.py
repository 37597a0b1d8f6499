import json

import numpy as np
import pytest
import torch

from raxels.cameras import canonicalise
from raxels.data.clips import resize_clip
from raxels.data.realestate10k import load_re10k_clip
from raxels.errors import InputError
from raxels.io import (
    read_colmap_text,
    read_re10k,
    read_transforms,
    read_video,
    write_colmap_text,
    write_re10k,
    write_transforms,
    write_video,
)
from tests.conftest import random_cameras


def _square_pixel_cameras():
    cams = random_cameras(1, 5, 48, 64, seed=11)
    cams.K[..., 1, 1] = cams.K[..., 0, 0]  # RealEstate10K stores square pixels
    return cams


def test_re10k_round_trip_exact(tmp_path):
    cams = _square_pixel_cameras()
    ts = [1000 * i for i in range(5)]
    write_re10k(tmp_path / "c.txt", cams, ts, url="https://x")
    traj = read_re10k(tmp_path / "c.txt", 48, 64)
    assert traj.timestamps == ts and traj.url == "https://x"
    assert torch.allclose(traj.cameras.K, cams.K, atol=1e-8)
    assert torch.allclose(traj.cameras.c2w, cams.c2w, atol=1e-9)


def test_re10k_real_file_intrinsics_rule(re10k_pairs):
    main = [p for p in re10k_pairs if p[0].parent.parent.name == "main"][0]
    traj = read_re10k(main[1], 256, 384)
    assert abs(traj.cameras.K[0, 0, 0, 0].item() - 216.0) < 0.2
    assert torch.allclose(traj.cameras.K[0, :, 0, 0], traj.cameras.K[0, :, 1, 1], rtol=1e-3)
    assert traj.cameras.K[0, 0, 0, 2].item() == 192.0 and traj.cameras.K[0, 0, 1, 2].item() == 128.0
    svd = [p for p in re10k_pairs if p[0].stem.endswith("_svd")][0]
    assert abs(read_re10k(svd[1], 320, 576).cameras.K[0, 0, 0, 0].item() - 273.5) < 0.3


def test_transforms_round_trip_exact(tmp_path):
    cams = random_cameras(1, 4, 30, 40, seed=12)
    write_transforms(tmp_path / "transforms.json", cams, [f"im{i}.png" for i in range(4)])
    back, names = read_transforms(tmp_path / "transforms.json")
    assert names == [f"im{i}.png" for i in range(4)]
    assert (back.height, back.width) == (30, 40)
    assert torch.allclose(back.K, cams.K) and torch.allclose(back.c2w, cams.c2w)


def test_transforms_global_intrinsics_and_opengl_convention(tmp_path):
    meta = {
        "fl_x": 50.0,
        "fl_y": 50.0,
        "cx": 20.0,
        "cy": 15.0,
        "w": 40,
        "h": 30,
        "frames": [{"file_path": "a.png", "transform_matrix": np.eye(4).tolist()}],
    }
    (tmp_path / "t.json").write_text(json.dumps(meta))
    cams, _ = read_transforms(tmp_path / "t.json")
    # An OpenGL identity camera looks down -z: in OpenCV its z axis points to -z of the world.
    assert torch.allclose(cams.c2w[0, 0, :3, 2], torch.tensor([0.0, 0.0, -1.0], dtype=cams.c2w.dtype))


def test_colmap_round_trip_exact(tmp_path):
    cams = random_cameras(1, 6, 30, 40, seed=13)
    write_colmap_text(tmp_path, cams)
    back, names = read_colmap_text(tmp_path)
    assert names == [f"frame_{i:05d}.png" for i in range(6)]
    assert torch.allclose(back.K, cams.K, atol=1e-12) and torch.allclose(back.c2w, cams.c2w, atol=1e-12)


def test_video_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    frames = torch.nn.functional.interpolate(
        torch.rand(6, 3, 8, 8, generator=g) * 2 - 1, size=(32, 48), mode="bilinear"
    )
    write_video(tmp_path / "v.mp4", frames, fps=8)
    back, fps = read_video(tmp_path / "v.mp4")
    assert back.shape == frames.shape and fps == 8
    assert (back - frames).abs().mean() < 0.1  # lossy H.264 with 4:2:0 chroma on random colours
    assert torch.corrcoef(torch.stack([back.flatten(), frames.flatten()]))[0, 1] > 0.95
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    write_video(tmp_path / "ntsc.mp4", frames, fps=30000 / 1001)  # was rounded to 30
    assert read_video(tmp_path / "ntsc.mp4")[1] == pytest.approx(29.97, abs=1e-3)


def test_all_real_clips_load_with_matching_counts(re10k_pairs):
    assert len(re10k_pairs) == 30
    for vid, pose in re10k_pairs:
        clip = load_re10k_clip(vid, pose)
        F = clip.frames.shape[0]
        assert F in (14, 16, 25) and clip.cameras.c2w.shape[:2] == (1, F)
        assert clip.frames.shape[-2:] == (clip.cameras.height, clip.cameras.width)
        canonicalise(clip.cameras)


def test_resize_clip_keeps_rays(re10k_pairs):
    from raxels.raxels import ray_directions

    vid, pose = re10k_pairs[0]
    clip = load_re10k_clip(vid, pose, size=(64, 64))
    assert clip.frames.shape[-2:] == (64, 64)
    full = load_re10k_clip(vid, pose)
    # The centre pixel's ray is unchanged by the centre crop and resize.
    d_small = ray_directions(clip.cameras.to(torch.float64))[0, :, 31:33, 31:33].mean((1, 2))
    d_full = ray_directions(full.cameras.to(torch.float64))[0, :, 127:129, 191:193].mean((1, 2))
    assert torch.allclose(
        d_small / d_small.norm(dim=-1, keepdim=True), d_full / d_full.norm(dim=-1, keepdim=True), atol=1e-4
    )
    # Resized as they decode, the frames and intrinsics are those of the whole clip resized afterwards.
    frames, cams = resize_clip(full.frames, full.cameras, 64, 64)
    assert torch.equal(clip.frames, frames) and torch.equal(clip.cameras.K, cams.K)


# ---- bad input: one line naming the file and the problem ----

GOOD = "https://x\n0 0.5 0.88 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("https://x\n", "at least one camera"),
        ("https://x\n0 0.5 0.88 0.5 0.5 0 0 1 0 0 0\n", "19 numbers"),
        ("https://x\n0 0.5 0.88 0.5 0.5 0 0 1 0 0 0 0 1 zz 0 0 0 1 0\n", "not a number"),
        ("https://x\n0 0.5 0.88 0.5 0.5 0 0 1 0 0 nan 0 1 0 0 0 0 1 0\n", "NaN or inf"),
        ("https://x\n0 0.5 0.88 0.5 0.5 0 0 2 0 0 0 0 1 0 0 0 0 1 0\n", "not a proper rotation"),
        ("https://x\n0 -0.5 0.88 0.5 0.5 0 0 1 0 0 0 0 1 0 0 0 0 1 0\n", "focal"),
    ],
)
def test_bad_re10k_files(tmp_path, text, message):
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(InputError, match=message) as e:
        read_re10k(f, 32, 32)
    assert "bad.txt" in str(e.value) and "\n" not in str(e.value)


def test_missing_files(tmp_path):
    for fn, arg in (
        (read_re10k, (tmp_path / "no.txt", 8, 8)),
        (read_video, (tmp_path / "no.mp4",)),
        (read_transforms, (tmp_path / "no.json",)),
        (read_colmap_text, (tmp_path,)),
    ):
        with pytest.raises(InputError, match="not found"):
            fn(*arg)


def test_corrupt_video(tmp_path):
    f = tmp_path / "broken.mp4"
    f.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(InputError, match="broken.mp4"):
        read_video(f)


def test_frame_pose_count_mismatch(tmp_path, re10k_pairs):
    vid, pose = re10k_pairs[0]
    lines = pose.read_text().splitlines()
    short = tmp_path / "short.txt"
    short.write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(InputError, match="16 frames but .*short.txt has 14 cameras"):
        load_re10k_clip(vid, short)


def test_bad_transforms_and_colmap(tmp_path):
    (tmp_path / "t.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        read_transforms(tmp_path / "t.json")
    (tmp_path / "t.json").write_text(
        json.dumps({"frames": [{"transform_matrix": [[1, 0], [0, 1]]}], "fl_x": 1, "w": 4, "h": 4})
    )
    with pytest.raises(InputError, match="4x4"):
        read_transforms(tmp_path / "t.json")
    (tmp_path / "cameras.txt").write_text("1 PINHOLE 40 30 50 50 20 15\n")
    (tmp_path / "images.txt").write_text("1 nan 0 0 0 0 0 0 1 a.png\n\n")
    with pytest.raises(InputError, match="NaN"):
        read_colmap_text(tmp_path)
    (tmp_path / "images.txt").write_text("1 1 0 0 0 0 0 0 7 a.png\n\n")
    with pytest.raises(InputError, match="unknown camera id 7"):
        read_colmap_text(tmp_path)


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"frames": {"a": 1}}, "no 'frames' list"),
        ({"frames": []}, "'frames' list is empty"),
        ({"frames": [5], "fl_x": 1, "w": 4, "h": 4}, "frame 0 is not an object"),
        ({"frames": [{"fl_x": "12"}], "w": 4, "h": 4}, "frame 0 'fl_x' must be a number, got '12'"),
        ({"frames": [{"fl_x": [1, 2]}], "w": 4, "h": 4}, "frame 0 'fl_x' must be a number"),
        ({"frames": [{"fl_x": 2, "cx": float("nan")}], "w": 4, "h": 4}, "frame 0 'cx' must be a number, got nan"),
        ({"frames": [{"fl_x": 2}], "w": 4.5, "h": 4}, "frame 0 'w' must be a positive whole number, got 4.5"),
        ({"frames": [{"fl_x": 2}], "w": 4, "h": True}, "frame 0 'h' must be a positive whole number, got True"),
        ({"frames": [{"fl_x": 2}], "w": 0, "h": 4}, "frame 0 'w' must be a positive whole number, got 0"),
        ({"frames": [{"fl_x": 2}], "w": "4", "h": 4}, "frame 0 'w' must be a positive whole number, got '4'"),
    ],
)
def test_malformed_transforms_fields_are_one_line_errors(meta, message, tmp_path):
    # Hand-edited or foreign transforms.json files: each field's type is checked before any arithmetic on it.
    f = tmp_path / "t.json"
    f.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=message) as e:
        read_transforms(f)
    assert "t.json" in str(e.value) and "\n" not in str(e.value)


def test_transforms_whole_number_floats_are_sizes(tmp_path):
    eye = torch.eye(4).tolist()
    f = tmp_path / "t.json"
    f.write_text(json.dumps({"frames": [{"transform_matrix": eye}] * 2, "fl_x": 3, "w": 8.0, "h": 6}))
    cams, _ = read_transforms(f)
    assert (cams.width, cams.height) == (8, 6) and float(cams.K[0, 0, 0, 2]) == 4.0


def test_read_video_maps_each_frame_as_it_decodes(tmp_path):
    # 70 frames: past one block of kept results. The mapped frames are the whole video's, mapped afterwards, to the bit.
    from raxels.data.clips import resize_frames

    t = torch.linspace(-1, 1, 70)[:, None, None, None]
    frames = (torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0)) * 2 - 1) * 0.5 + 0.5 * t
    write_video(tmp_path / "v.mp4", frames)
    whole, _ = read_video(tmp_path / "v.mp4")
    seen = []

    def shrink(frame):
        seen.append(tuple(frame.shape))
        return resize_frames(frame, 16, 16)

    mapped, fps = read_video(tmp_path / "v.mp4", frame_fn=shrink)
    assert fps == 8 and seen == [(3, 40, 56)] * 70
    assert torch.equal(mapped, resize_frames(whole, 16, 16))
    assert mapped.stride() == resize_frames(whole, 16, 16).stride()  # channels innermost, as the whole video's
    # A result that is a view of the reused input buffer is copied, not overwritten by the next frame.
    as_is, _ = read_video(tmp_path / "v.mp4", frame_fn=lambda f: f[:, :8])
    assert torch.equal(as_is, whole[:, :, :8])
    first, _ = read_video(tmp_path / "v.mp4", max_frames=5, frame_fn=shrink)
    assert torch.equal(first, mapped[:5])


@pytest.mark.parametrize("frame_fn", [None, lambda f: f[:, :2]])
def test_video_whose_frame_size_changes_is_a_one_line_error(frame_fn, tmp_path, monkeypatch):
    # No encoder here writes such a stream, so the decoder is stood in for: the second frame is smaller.
    import types

    import raxels.io.video as video

    class Frame:
        def __init__(self, h, w):
            self.h, self.w = h, w

        def to_ndarray(self, format):
            return np.zeros((self.h, self.w, 3), np.uint8)

    class Container:
        streams = types.SimpleNamespace(video=[types.SimpleNamespace(average_rate=8)])

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def decode(self, stream):
            return iter([Frame(6, 8), Frame(4, 8)])

    (tmp_path / "v.mp4").write_bytes(b"stand-in")
    monkeypatch.setattr(video.av, "open", lambda path: Container())
    with pytest.raises(InputError, match="frame 1 is 8x4, the first 8x6") as e:
        video.read_video(tmp_path / "v.mp4", frame_fn=frame_fn)
    assert "v.mp4" in str(e.value) and "\n" not in str(e.value)
