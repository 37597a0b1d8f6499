"""The `raxels` command, run in-process through the same entry point as the console script."""

import json
import shutil
import sys

import pytest
import torch

from raxels.cli import main
from raxels.data.synthrooms import SynthRoomsConfig, synth_clip
from raxels.io import read_cameras, read_re10k, read_video, write_image, write_re10k, write_video
from raxels.model import build_model, model_config
from raxels.tasks import PipelineConfig, write_pipeline_config


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    cfg = model_config("tiny", dim=64, heads=2, ffn_dim=128, num_layers=1, ray_dim=64, ray_heads=2, ray_ffn_dim=128)
    folder = tmp_path_factory.mktemp("model")
    build_model(cfg).save_pretrained(folder)
    write_pipeline_config(folder, PipelineConfig(height=32, width=32))
    return folder


@pytest.fixture(scope="module")
def clip_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clip")
    clip = synth_clip(5, SynthRoomsConfig(frames=6, height=48, width=64))
    write_video(d / "clip.mp4", clip.frames, fps=10)
    write_image(d / "first.png", clip.frames[0])
    write_re10k(d / "traj.txt", clip.cameras)
    return d, clip


def run(argv, capsys):
    old = sys.argv
    sys.argv = ["raxels", *map(str, argv)]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


def test_estimate_writes_all_formats(model_dir, clip_files, tmp_path, capsys):
    d, clip = clip_files
    code, out, err = run(["estimate", d / "clip.mp4", "--out", tmp_path / "est", "--model", model_dir], capsys)
    assert code == 0, err
    # Only the result line on stdout, and no progress bar where nothing watches it (here stdout and stderr are
    # captured, as in a pipe).
    assert out.splitlines() == [f"wrote cameras.txt, transforms.json, colmap/, trajectory.png to {tmp_path / 'est'}"]
    assert err == ""
    for name in ("cameras.txt", "transforms.json", "colmap/cameras.txt", "colmap/images.txt", "trajectory.png"):
        assert (tmp_path / "est" / name).is_file(), name
    traj = read_re10k(tmp_path / "est" / "cameras.txt", 48, 64)
    cams = traj.cameras
    assert cams.c2w.shape[1] == 6
    assert traj.timestamps == [i * 100_000 for i in range(6)]  # the video's 10 fps, in microseconds
    # Intrinsics come back in pixels of the input video (64x48), not of the model's 32x32.
    assert read_cameras(tmp_path / "est" / "transforms.json").width == 64


def test_estimate_and_generate_a_clip_longer_than_the_model_was_trained_on(model_dir, tmp_path, capsys):
    clip = synth_clip(6, SynthRoomsConfig(frames=13, height=32, width=32))  # the test model's train_frames: (8,)
    write_video(tmp_path / "long.mp4", clip.frames, fps=8)
    code, _, err = run(["estimate", tmp_path / "long.mp4", "--out", tmp_path / "est", "--model", model_dir], capsys)
    assert code == 0, err
    cams = read_re10k(tmp_path / "est" / "cameras.txt", 32, 32).cameras
    assert cams.c2w.shape[1] == 13 and torch.isfinite(cams.c2w).all()
    # --window 13 runs it whole instead: other noise draws, other cameras.
    argv = ["estimate", tmp_path / "long.mp4", "--out", tmp_path / "whole", "--model", model_dir, "--window", 13]
    assert run(argv, capsys)[0] == 0
    assert not torch.allclose(read_re10k(tmp_path / "whole" / "cameras.txt", 32, 32).cameras.c2w, cams.c2w)
    # Generation along those 13 cameras, in windows (8 + 6 frames) and whole: every frame written either way (the
    # untrained test model's frames do not tell the two apart; test_tasks checks the windows).
    write_re10k(tmp_path / "long.txt", clip.cameras)
    write_image(tmp_path / "first.png", clip.frames[0])
    for name, extra in (("windows.mp4", []), ("whole.mp4", ["--window", 13])):
        argv = ["generate", tmp_path / "first.png", "--trajectory", tmp_path / "long.txt", "--out", tmp_path / name]
        assert run([*argv, "--model", model_dir, "--steps", 1, *extra], capsys)[0] == 0
        assert read_video(tmp_path / name)[0].shape[0] == 13


def test_generate_joint_consistency(model_dir, clip_files, tmp_path, capsys):
    d, clip = clip_files
    code, _, err = run(
        [
            "generate",
            d / "first.png",
            "--trajectory",
            d / "traj.txt",
            "--out",
            tmp_path / "g.mp4",
            "--model",
            model_dir,
            "--steps",
            2,
        ],
        capsys,
    )
    assert code == 0, err
    assert read_video(tmp_path / "g.mp4")[0].shape[0] == 6
    code, _, err = run(
        ["joint", d / "first.png", "--out", tmp_path / "j", "--frames", 4, "--model", model_dir, "--steps", 2], capsys
    )
    assert code == 0, err
    assert (tmp_path / "j" / "video.mp4").is_file() and (tmp_path / "j" / "cameras.txt").is_file()
    code, out, err = run(
        ["consistency", d / "clip.mp4", "--out", tmp_path / "c", "--model", model_dir, "--generate-steps", 2], capsys
    )
    assert code == 0, err
    assert (tmp_path / "c" / "metrics.json").is_file() and '"psnr"' in out
    assert read_video(tmp_path / "c" / "regenerated.mp4")[1] == 10  # at the input's frame rate


def test_train_on_dl3dv_scenes_with_the_wan_vae_then_estimate(dl3dv_scene, tiny_wan_vae, clip_files, tmp_path,
                                                               capsys):
    """The training options for real data and the VAE reach the run, and its exported model runs a task."""
    d, _ = clip_files
    small = ["--height", 32, "--width", 32, "--frames", 5, "--steps", 1, "--batch-size", 1, "--log-every", 1]
    argv = ["train", "--data", "dl3dv", "--data-root", dl3dv_scene[0].parent, "--dl3dv-images", "images_2"]
    argv += ["--codec", "wan-vae", "--vae", tiny_wan_vae, "--raxel-scale", 0.5, "--max-stride", 2, *small]
    code, out, err = run([*argv, "--out", tmp_path / "run"], capsys)
    assert code == 0, err
    cfg = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert (cfg["data"], cfg["dl3dv_images"], cfg["codec"], cfg["raxel_scale"], cfg["max_stride"]) == (
        "dl3dv", "images_2", "wan-vae", 0.5, 2
    )
    code, out, err = run(["estimate", d / "clip.mp4", "--out", tmp_path / "est", "--model", tmp_path / "run" / "model",
                          "--device", "cpu"], capsys)
    assert code == 0, err
    assert read_re10k(tmp_path / "est" / "cameras.txt", 48, 64).cameras.c2w.shape[1] == 6


@pytest.mark.parametrize("workers", [0, 2])
def test_train_on_a_corrupt_clip_is_one_line_exit_2(clip_files, tmp_path, capsys, workers):
    """Found when a step draws the clip, in the training process or in a loader worker: the clip's own error."""
    d, _ = clip_files
    root = tmp_path / "clips"
    root.mkdir()
    shutil.copy(d / "clip.mp4", root / "good.mp4")
    shutil.copy(d / "traj.txt", root / "good.txt")
    (root / "broken.mp4").write_bytes((d / "clip.mp4").read_bytes()[:3000])
    shutil.copy(d / "traj.txt", root / "broken.txt")
    small = ["--height", 32, "--width", 32, "--frames", 4, "--steps", 3, "--batch-size", 4, "--ckpt-every", 1]
    argv = ["train", "--data", "re10k", "--data-root", root, "--loader-workers", workers, *small]
    code, out, err = run([*argv, "--out", tmp_path / "run"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "broken.mp4: cannot decode video" in err
    assert not (tmp_path / "run").exists()  # failed in its first step: the run folder it made is gone


def test_convert_round_trip(clip_files, tmp_path, capsys):
    d, clip = clip_files
    assert run(["convert", d / "traj.txt", tmp_path / "t.json", "--width", 64, "--height", 48], capsys)[0] == 0
    assert run(["convert", tmp_path / "t.json", tmp_path / "colmap"], capsys)[0] == 0
    assert run(["convert", tmp_path / "colmap", tmp_path / "back.txt"], capsys)[0] == 0
    a = read_re10k(d / "traj.txt", 48, 64).cameras
    b = read_re10k(tmp_path / "back.txt", 48, 64).cameras
    assert torch.allclose(a.c2w, b.c2w, atol=1e-7) and torch.allclose(a.K, b.K, atol=1e-6)
    # An existing folder takes COLMAP text whatever its name (it used to be an unknown format for its suffix).
    (tmp_path / "sparse_v1.2").mkdir()
    assert run(["convert", tmp_path / "t.json", tmp_path / "sparse_v1.2"], capsys)[0] == 0
    assert (tmp_path / "sparse_v1.2" / "images.txt").read_text() == (tmp_path / "colmap" / "images.txt").read_text()


@pytest.mark.parametrize(
    "case",
    [
        "corrupt_video",
        "missing_video",
        "nan_trajectory",
        "missing_model",
        "re10k_no_size",
        "bad_format",
        "bad_train",
        "missing_init",
        "corrupt_init",
        "init_corrupt_model_folder",
        "init_model_folder_misfit",
        "init_folder_not_a_checkpoint",
        "pure_noise_share",
        "task_probs_three",
        "frames_choices_not_numbers",
        "frames_and_frames_choices",
        "corrupt_resume",
        "export_corrupt",
        "export_not_a_checkpoint",
        "export_empty_run",
        "hfov_too_wide",
        "hfov_negative",
        "eval_negative_clips",
        "eval_no_dl3dv",
        "train_size",
        "out_folder_is_a_file",
        "out_file_is_a_folder",
        "out_not_mp4",
        "out_under_a_file",
        "window_one",
        "generate_window_one",
        "gpu_missing",
        "device_unknown",
        "train_data_root_missing",
        "corrupt_model",
        "one_frame_video",
        "video_as_image",
        "steps_zero",
        "joint_one_frame",
        "eval_generate_steps_zero",
        "colmap_unknown_camera_model",
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, model_dir, clip_files, tmp_path, capsys):
    d, clip = clip_files
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.mp4").write_bytes(b"not a video at all" * 50)
    (bad / "a_file").write_text("keep me")
    (bad / "a_folder.mp4").mkdir()
    lines = (d / "traj.txt").read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:10] + ["nan"] + lines[2].split()[11:])
    (bad / "nan.txt").write_text("\n".join(lines) + "\n")
    shutil.copytree(model_dir, bad / "model")
    (bad / "model" / "diffusion_pytorch_model.safetensors").write_bytes(b"not safetensors")
    (bad / "run").mkdir()
    (bad / "run" / "checkpoint.safetensors").write_bytes(b"not safetensors either" * 10)
    write_video(bad / "one_frame.mp4", clip.frames[:1], fps=10)
    shutil.copy(d / "clip.mp4", bad / "video.png")
    (bad / "colmap").mkdir()
    (bad / "colmap" / "cameras.txt").write_text("1 NOT_A_MODEL 64 48 50 50 32 24\n")
    (bad / "colmap" / "images.txt").write_text("1 1 0 0 0 0 0 0 1 a.png\n\n2 1 0 0 0 0.1 0 0 1 b.png\n\n")
    argv = {
        "corrupt_video": ["estimate", bad / "broken.mp4", "--out", tmp_path / "o", "--model", model_dir],
        "missing_video": ["consistency", bad / "nope.mp4", "--out", tmp_path / "o", "--model", model_dir],
        "nan_trajectory": [
            "generate",
            d / "first.png",
            "--trajectory",
            bad / "nan.txt",
            "--out",
            tmp_path / "o.mp4",
            "--model",
            model_dir,
        ],
        "missing_model": ["estimate", d / "clip.mp4", "--out", tmp_path / "o", "--model", bad / "nomodel"],
        "re10k_no_size": ["convert", d / "traj.txt", tmp_path / "o.json"],
        "bad_format": ["convert", d / "traj.txt", tmp_path / "o.xyz", "--width", 64, "--height", 48],
        "bad_train": [
            "train",
            "--steps",
            1,
            "--pose-loss-weight",
            0.5,
            "--pose-centre-weight",
            -1,
            "--out",
            tmp_path / "o",
        ],
        "missing_init": ["train", "--steps", 1, "--init-from", bad / "nope.safetensors", "--out", tmp_path / "o"],
        "corrupt_init": ["train", "--steps", 1, "--init-from", bad / "broken.mp4", "--out", tmp_path / "o"],
        "init_corrupt_model_folder": ["train", "--steps", 1, "--init-from", bad / "model", "--out", tmp_path / "o"],
        "init_model_folder_misfit": ["train", "--steps", 1, "--init-from", model_dir, "--out", tmp_path / "o"],
        "init_folder_not_a_checkpoint": [
            "train", "--steps", 1, "--init-from", bad / "a_folder.mp4", "--out", tmp_path / "o"
        ],
        "pure_noise_share": ["train", "--steps", 1, "--pure-noise-share", 2, "--out", tmp_path / "o"],
        "task_probs_three": ["train", "--steps", 1, "--task-probs", "0.5,0.3,0.2", "--out", tmp_path / "o"],
        "frames_choices_not_numbers": ["train", "--steps", 1, "--frames-choices", "4,eight", "--out", tmp_path / "o"],
        "frames_and_frames_choices": [
            "train", "--steps", 1, "--frames", 4, "--frames-choices", "4,8", "--out", tmp_path / "o"
        ],
        "corrupt_resume": ["train", "--steps", 1, "--resume", "--out", bad / "run"],
        "export_corrupt": ["export", bad / "run" / "checkpoint.safetensors", "--out", tmp_path / "o"],
        "export_not_a_checkpoint": ["export", bad / "model", "--out", tmp_path / "o"],
        "export_empty_run": ["export", bad / "a_folder.mp4", "--out", tmp_path / "o"],
        "hfov_too_wide": ["joint", d / "first.png", "--out", tmp_path / "o", "--hfov", 200, "--model", model_dir],
        "hfov_negative": ["joint", d / "first.png", "--out", tmp_path / "o", "--hfov", -5, "--model", model_dir],
        "eval_negative_clips": ["eval", "--model", model_dir, "--synth-clips", -3, "--out", tmp_path / "o.json"],
        "eval_no_dl3dv": ["eval", "--model", model_dir, "--dl3dv", bad, "--out", tmp_path / "o.json"],
        "train_size": ["train", "--steps", 1, "--height", 36, "--out", tmp_path / "o"],
        "out_folder_is_a_file": ["estimate", d / "clip.mp4", "--out", bad / "a_file", "--model", model_dir],
        "out_file_is_a_folder": [
            "generate", d / "first.png", "--trajectory", d / "traj.txt", "--out", bad / "a_folder.mp4"
        ],
        "out_not_mp4": ["generate", d / "first.png", "--trajectory", d / "traj.txt", "--out", tmp_path / "o.avi"],
        "out_under_a_file": ["joint", d / "first.png", "--out", bad / "a_file" / "o", "--model", model_dir],
        "window_one": ["estimate", d / "clip.mp4", "--out", tmp_path / "o", "--model", model_dir, "--window", 1],
        "generate_window_one": [
            "generate", d / "first.png", "--trajectory", d / "traj.txt", "--out", tmp_path / "o.mp4", "--window", 1
        ],
        "gpu_missing": [
            "estimate", d / "clip.mp4", "--out", tmp_path / "o", "--model", model_dir, "--device", "cuda:99"
        ],
        "device_unknown": ["joint", d / "first.png", "--out", tmp_path / "o", "--model", model_dir, "--device", "gpu"],
        "train_data_root_missing": ["train", "--steps", 1, "--data", "re10k", "--out", tmp_path / "o"],
        "corrupt_model": ["estimate", d / "clip.mp4", "--out", tmp_path / "o", "--model", bad / "model"],
        "one_frame_video": ["consistency", bad / "one_frame.mp4", "--out", tmp_path / "o", "--model", model_dir],
        "video_as_image": ["joint", bad / "video.png", "--out", tmp_path / "o", "--model", model_dir],
        "steps_zero": ["estimate", d / "clip.mp4", "--out", tmp_path / "o", "--model", model_dir, "--steps", 0],
        "joint_one_frame": ["joint", d / "first.png", "--out", tmp_path / "o", "--model", model_dir, "--frames", 1],
        "eval_generate_steps_zero": [
            "eval", "--model", model_dir, "--synth-clips", 1, "--no-re10k", "--no-baselines", "--generate-steps", 0,
            "--out", tmp_path / "o.json",
        ],
        "colmap_unknown_camera_model": [
            "generate", d / "first.png", "--trajectory", bad / "colmap", "--out", tmp_path / "o.mp4",
            "--model", model_dir,
        ],
    }[case]
    code, out, err = run(argv, capsys)
    assert code == 2
    assert err.startswith("raxels: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert not [p for p in bad.iterdir() if p.name.startswith(".")] and not (tmp_path / "o.avi").exists()
    assert (bad / "a_file").read_text() == "keep me" and not list((bad / "a_folder.mp4").iterdir())
    assert [p.name for p in (bad / "run").iterdir()] == ["checkpoint.safetensors"]  # a failed resume adds nothing


def test_train_takes_the_task_mix_and_clip_lengths(tmp_path, capsys):
    """The second-stage variants of docs/experiments.md as options; `--frames` replaces a preset's mix of clip
    lengths (it was silently overridden by it)."""
    small = ["--config", "tiny", "--steps", 1, "--height", 32, "--width", 32, "--batch-size", 2]
    code, out, err = run(["train", *small, "--frames-choices", "2,3", "--task-probs", "1,0,0,0.5",
                          "--out", tmp_path / "mix"], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "mix" / "train_config.json").read_text())
    assert saved["frames_choices"] == [2, 3] and saved["task_probs"] == [1.0, 0.0, 0.0, 0.5]
    # --no-compile: the preset compiles, which costs a minute or more before its first step here.
    code, out, err = run(["train", "--preset", "checkpoint", *small, "--frames", 3, "--no-compile",
                          "--out", tmp_path / "one"], capsys)
    assert code == 0, err
    saved = json.loads((tmp_path / "one" / "train_config.json").read_text())
    assert saved["frames"] == 3 and saved["frames_choices"] == [] and saved["steps"] == 1
    assert saved["compile"] is False


def test_export_a_running_trainings_checkpoint_then_estimate(clip_files, tmp_path, capsys):
    """`raxels export` makes a model folder of a checkpoint folder (or file) that the other commands run."""
    from raxels.train import train
    from tests.test_train import _cfg

    train(_cfg(tmp_path / "run", steps=2, ckpt_every=1, sharded_checkpoints=True), progress=False)
    d, _ = clip_files
    code, out, err = run(["export", tmp_path / "run" / "checkpoint.dcp", "--out", tmp_path / "model"], capsys)
    assert code == 0, err
    exported, trained = (tmp_path / p / "diffusion_pytorch_model.safetensors" for p in ("model", "run/model"))
    assert exported.read_bytes() == trained.read_bytes()  # the final checkpoint is the run's end
    code, out, err = run(["export", tmp_path / "run", "--out", tmp_path / "from_run"], capsys)  # the run's latest
    assert code == 0, err
    assert (tmp_path / "from_run" / "diffusion_pytorch_model.safetensors").read_bytes() == trained.read_bytes()
    code, out, err = run(["estimate", d / "clip.mp4", "--out", tmp_path / "est", "--model", tmp_path / "model"], capsys)
    assert code == 0, err
    assert read_re10k(tmp_path / "est" / "cameras.txt", 48, 64).cameras.c2w.shape[1] == 6


def test_eval_writes_rows_for_both_models(model_dir, dl3dv_scene, tmp_path, capsys):
    torch.manual_seed(0)
    small = dict(dim=64, heads=2, ffn_dim=128, num_layers=1, ray_dim=64, ray_heads=2, ray_ffn_dim=128)
    plucker = tmp_path / "plucker"
    build_model(model_config("tiny", raxel_in_channels=96, camera_encoding="plucker", **small)).save_pretrained(plucker)
    write_pipeline_config(plucker, PipelineConfig(height=32, width=32, camera_encoding="plucker"))
    argv = ["eval", "--model", model_dir, "--plucker-model", plucker, "--synth-clips", 1, "--no-re10k"]
    argv += ["--no-baselines", "--generation-clips", 1, "--generate-steps", 1, "--heldout-clips", 2]
    argv += ["--dl3dv", dl3dv_scene[0].parent, "--dl3dv-stride", 1]
    code, out, err = run([*argv, "--out", tmp_path / "r.json"], capsys)
    assert code == 0, err
    res = json.loads((tmp_path / "r.json").read_text())
    assert {r["method"] for r in res["pose"]} == {"raxels (ours, 2 steps)", "plucker variant (2 steps)"}
    assert set(res["heldout_synthrooms"]) == {"raxels", "plucker"}
    assert {(r["dataset"], r["frames"]) for r in res["pose"]} == {
        (d, f) for d in ("synthrooms", "dl3dv") for f in ("dense", "sparse")
    }
    assert all(r["clips"] == 1 and r["failed"] == 0 for r in res["pose"])
    assert set(res["generation"]) == {f"{m}/{d}" for m in ("raxels", "plucker") for d in ("synthrooms", "dl3dv")}
    assert "RotErr_true_video" in res["generation"]["raxels/synthrooms"]
    # Not a terminal here, as in a log: each row whole on its line, the table's cells uncut.
    lines = out.splitlines()
    assert any(ln.startswith("synthrooms  dense plucker variant (2 steps)") and ln.endswith("s/clip") for ln in lines)
    assert any("s_per_clip" in ln and "fail_rate" in ln for ln in lines)
    assert sum("plucker variant (2 steps)" in ln for ln in lines) == 4 + 4  # 2 datasets x 2 lengths, row and cell
