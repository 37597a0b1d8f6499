"""The `raxels` command. Bad input ends with one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .cli_train import export, train
from .errors import InputError, first_line
from .paths import DEFAULT_MODEL

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Rays as Pixels: videos and camera trajectories.")


@app.callback()
def _root() -> None:
    """Rays as Pixels: one diffusion model for videos and camera trajectories."""


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), help="Output folder."),
    model: Path = typer.Option(None, help="Model folder (default: the shipped tiny checkpoint)."),
) -> None:
    """Run all three tasks and the self-consistency test on the embedded defaults; writes OUT/report.html."""
    from .demo import run_demo
    from .io.atomic import check_output

    run_demo(check_output(out, folder=True), model or DEFAULT_MODEL)


app.command()(train)
app.command()(export)


class _Steps:
    """A rich progress bar over denoising steps (pass the instance as `on_step`). On stderr, and only where that is
    a terminal: stdout keeps just the result line (rich wrote a stray blank line there when it was piped)."""

    def __init__(self, label: str, total: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task(label, total=total)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def __call__(self, i: int, n: int) -> None:
        self.progress.advance(self.task)


PRECISION = typer.Option(
    "auto", help="Transformer precision: auto (bf16 where the CPU or GPU has it natively), fp32 or bf16."
)


DEVICE = typer.Option("auto", help="cpu, cuda, cuda:1, ... or auto (the GPU if there is one).")


def _pipeline(model: Path, precision: str = "auto", device: str = "auto"):
    from .tasks import Pipeline

    return Pipeline.from_pretrained(model, precision, device)


def _load_video(pipe, path: Path):
    from .data.clips import read_video_resized

    frames, size, fps = read_video_resized(path, pipe.cfg.height, pipe.cfg.width)
    if frames.shape[0] < 2:
        raise InputError(f"{path}: need at least 2 frames, got {frames.shape[0]}")
    return frames, size, fps


@app.command()
def estimate(
    video: Path = typer.Argument(..., help="Input video (mp4)."),
    out: Path = typer.Option(..., help="Output folder."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Model folder."),
    precision: str = PRECISION,
    device: str = DEVICE,
    steps: int = typer.Option(2, help="Denoising steps (2 is best for poses)."),
    seed: int = typer.Option(0),
    window: int = typer.Option(
        None, help="Longest subset of frames run at once (default: the model's longest training clip)."
    ),
) -> None:
    """Video -> camera trajectory (RealEstate10K txt, transforms.json, COLMAP text, trajectory plot)."""
    import torch

    from .data.clips import unresize_cameras
    from .io.atomic import check_output, staged_dir
    from .outputs import write_camera_outputs
    from .tasks import estimate_trajectory

    check_output(out, folder=True)
    pipe = _pipeline(model, precision, device)
    frames, (H, W), fps = _load_video(pipe, video)
    with _Steps("estimating poses", steps) as bar:
        cams, raxels = estimate_trajectory(pipe, frames, steps, torch.Generator().manual_seed(seed), bar, window)
    cams = unresize_cameras(cams, int(H), int(W))
    with staged_dir(out) as tmp:
        files = write_camera_outputs(tmp, cams, title=video.name, fps=fps)
    print(f"wrote {', '.join(files)} to {out}")


@app.command()
def generate(
    image: Path = typer.Argument(..., help="First frame (png/jpg)."),
    trajectory: Path = typer.Option(..., help="Camera file: .txt RealEstate10K, .json transforms, COLMAP folder."),
    out: Path = typer.Option(Path("generated.mp4"), help="Output mp4."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Model folder."),
    precision: str = PRECISION,
    device: str = DEVICE,
    steps: int = typer.Option(20),
    seed: int = typer.Option(0),
    window: int = typer.Option(
        None, help="Longest window of frames sampled at once (default: the model's longest training clip)."
    ),
) -> None:
    """Image + trajectory -> video along the trajectory."""
    import torch

    from .data.clips import resize_cameras, resize_frames
    from .io import read_cameras, read_image, write_video
    from .io.atomic import check_output
    from .io.video import upscale_for_viewing
    from .tasks import generate_video, generation_windows

    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output is an mp4 video; name it .mp4")
    check_output(out, folder=False)
    pipe = _pipeline(model, precision, device)
    img = read_image(image)
    cams = read_cameras(trajectory, img.shape[-2], img.shape[-1])
    if cams.c2w.shape[1] < 2:
        raise InputError(f"{trajectory}: need at least 2 cameras")
    cams = resize_cameras(cams, pipe.cfg.height, pipe.cfg.width)
    frames = resize_frames(img, pipe.cfg.height, pipe.cfg.width)
    g = torch.Generator().manual_seed(seed)
    with _Steps("generating video", steps * len(generation_windows(pipe, cams.c2w.shape[1], 1, window))) as bar:
        video = generate_video(pipe, frames[None, None], cams, steps, g, bar, window)
    write_video(out, upscale_for_viewing(video[0]))
    print(f"wrote {out} ({video.shape[1]} frames)")


@app.command()
def joint(
    image: Path = typer.Argument(..., help="First frame (png/jpg)."),
    out: Path = typer.Option(..., help="Output folder."),
    frames: int = typer.Option(16, help="Frames to generate."),
    hfov: float = typer.Option(
        0.0, help="Horizontal field of view of the image in degrees (0: let the model infer it)."
    ),
    model: Path = typer.Option(DEFAULT_MODEL, help="Model folder."),
    precision: str = PRECISION,
    device: str = DEVICE,
    steps: int = typer.Option(20),
    seed: int = typer.Option(0),
) -> None:
    """Image -> video and its camera trajectory."""
    import torch

    from .data.clips import resize_frames
    from .io import read_image, write_video
    from .io.atomic import check_output, staged_dir
    from .io.video import upscale_for_viewing
    from .outputs import write_camera_outputs
    from .tasks import default_intrinsics, generate_joint

    if frames < 2:
        raise InputError("--frames must be at least 2")
    check_output(out, folder=True)
    pipe = _pipeline(model, precision, device)
    img = resize_frames(read_image(image), pipe.cfg.height, pipe.cfg.width)
    K = default_intrinsics(pipe.cfg.height, pipe.cfg.width, hfov) if hfov != 0 else None
    with _Steps("generating video + trajectory", steps) as bar:
        video, cams, _ = generate_joint(
            pipe, img[None, None], frames, steps, K, torch.Generator().manual_seed(seed), bar
        )
    with staged_dir(out) as tmp:
        write_video(tmp / "video.mp4", upscale_for_viewing(video[0]))
        write_camera_outputs(tmp, cams, title="joint generation")
    print(f"wrote video.mp4 and cameras to {out}")


@app.command()
def consistency(
    video: Path = typer.Argument(..., help="Input video (mp4)."),
    out: Path = typer.Option(..., help="Output folder."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Model folder."),
    precision: str = PRECISION,
    device: str = DEVICE,
    estimate_steps: int = typer.Option(2),
    generate_steps: int = typer.Option(20),
    seed: int = typer.Option(0),
) -> None:
    """Closed loop: estimate poses, regenerate the video along them, compare videos and poses."""
    import json

    import torch

    from .io import write_video
    from .io.atomic import check_output, staged_dir
    from .io.video import upscale_for_viewing
    from .outputs import write_camera_outputs
    from .tasks import generation_windows, self_consistency

    check_output(out, folder=True)
    pipe = _pipeline(model, precision, device)
    frames, _, fps = _load_video(pipe, video)
    total = 2 * estimate_steps + generate_steps * len(generation_windows(pipe, frames.shape[0]))
    with _Steps("estimate -> regenerate -> estimate", total) as bar:
        res = self_consistency(pipe, frames, estimate_steps, generate_steps, torch.Generator().manual_seed(seed), bar)
    with staged_dir(out) as tmp:
        write_video(tmp / "regenerated.mp4", upscale_for_viewing(res["video_regenerated"][0]), fps)
        write_camera_outputs(tmp, res["cameras"], res["cameras_regenerated"], "estimated (V) vs estimated (V')", fps)
        (tmp / "metrics.json").write_text(json.dumps(res["metrics"], indent=2))
    print(json.dumps(res["metrics"], indent=2))


@app.command()
def convert(
    src: Path = typer.Argument(..., help="Camera file: .txt RealEstate10K, .json transforms, or a COLMAP folder."),
    dst: Path = typer.Argument(
        ..., help="Output: .txt, .json, or a folder (COLMAP text): an existing one or a name without an extension."
    ),
    width: int = typer.Option(None, help="Image width (needed to read a RealEstate10K file)."),
    height: int = typer.Option(None, help="Image height (needed to read a RealEstate10K file)."),
) -> None:
    """Convert cameras between RealEstate10K, nerfstudio transforms.json and COLMAP text."""
    from .io import read_cameras, write_colmap_text, write_re10k, write_transforms
    from .io.atomic import staged_dir

    cams = read_cameras(src, height, width)
    if dst.suffix == ".txt":
        write_re10k(dst, cams)
    elif dst.suffix == ".json":
        write_transforms(dst, cams)
    elif dst.suffix == "" or dst.is_dir():  # an existing folder whatever its name, such as sparse_v1.2
        with staged_dir(dst) as tmp:
            write_colmap_text(tmp, cams)
    else:
        raise InputError(f"{dst}: unknown output format (use .txt, .json, or a folder: an existing one or a name "
                         "without an extension)")
    print(f"wrote {cams.c2w.shape[1]} cameras to {dst}")


@app.command("eval")
def evaluate(
    out: Path = typer.Option(Path("out/eval/results.json"), help="JSON file for all results."),
    model: Path = typer.Option(DEFAULT_MODEL, help="Raxel model folder."),
    plucker_model: Path = typer.Option(None, help="Plücker-variant model folder (the ablation), if trained."),
    precision: str = PRECISION,
    device: str = DEVICE,
    synth_clips: int = typer.Option(20, help="Held-out SynthRooms clips."),
    re10k: bool = typer.Option(True, help="Also the RealEstate10K clips in ../shared (if present)."),
    dl3dv: Path = typer.Option(None, help="Also DL3DV: a scene folder (transforms.json + frames) or a folder of them."),
    dl3dv_stride: int = typer.Option(4, help="Take every N-th DL3DV frame."),
    dl3dv_images: str = typer.Option("", help="DL3DV frames from this folder of each scene, e.g. images_4."),
    baselines: bool = typer.Option(True, help="Run COLMAP and OpenCV essential-matrix chaining."),
    generation_clips: int = typer.Option(10, help="Clips for generation metrics (0: skip)."),
    generate_steps: int = typer.Option(20),
    heldout_clips: int = typer.Option(
        0,
        help="Also the checkpoint protocol: this many held-out SynthRooms clips "
        "(8 frames, 2 steps; generation PSNR on a quarter of them).",
    ),
) -> None:
    """Pose and generation metrics, ours and baselines side by side on the same clips; prints a table."""
    import json

    from rich.console import Console
    from rich.table import Table

    from .eval.harness import (
        baseline_methods,
        dl3dv_clips,
        evaluate_generation,
        evaluate_poses,
        model_method,
        re10k_clips,
        synthrooms_clips,
    )
    from .io.atomic import check_output, write_text_atomic

    counts = {"--synth-clips": synth_clips, "--generation-clips": generation_clips, "--heldout-clips": heldout_clips}
    for name, n in counts.items():
        if n < 0:
            raise InputError(f"{name} must be >= 0, got {n}")
    if generate_steps < 1:  # found here, not after the pose tables have run
        raise InputError(f"--generate-steps must be at least 1, got {generate_steps}")
    check_output(out, folder=False)
    # DL3DV is read before the models load: a bad folder fails at once.
    dl3dv_set = list(dl3dv_clips(dl3dv, stride=dl3dv_stride, image_dir=dl3dv_images)) if dl3dv is not None else []
    console = Console()
    if not console.is_terminal:  # a log file: rich would wrap the rows at 80 columns and cut the table's cells
        console = Console(width=200)
    pipes = {"raxels": _pipeline(model, precision, device)}
    methods = {"raxels (ours, 2 steps)": model_method(pipes["raxels"], 2)}
    if plucker_model is not None:
        pipes["plucker"] = _pipeline(plucker_model, precision, device)
        methods["plucker variant (2 steps)"] = model_method(pipes["plucker"], 2)
    if baselines:
        methods.update(baseline_methods())
    datasets = {"synthrooms": list(synthrooms_clips(synth_clips))}
    if re10k:
        clips = list(re10k_clips())
        if clips:
            datasets["re10k"] = clips
    if dl3dv_set:
        datasets["dl3dv"] = dl3dv_set
    rows = evaluate_poses(
        methods,
        datasets,
        progress=lambda r: console.print(
            f"{r['dataset']:>10} {r['frames']:>6} {r['method']:<26} fail {r['failed']}/{r['clips']}"
            f" RRA@15 {r.get('RRA@15', float('nan')):.3f} AUC@30 {r.get('AUC@30', float('nan')):.3f}"
            f" {r['s_per_clip']:.2f} s/clip"
        ),
    )
    table = Table(title="pose estimation")
    cols = "dataset frames method RRA@15 RRA@30 RTA@15 RTA@30 AUC@30 ATE s_per_clip fail_rate".split()
    for c in cols:
        table.add_column(c)
    for r in rows:
        table.add_row(*(f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, "-")) for c in cols))
    console.print(table)
    gen = {}
    if generation_clips:
        for name, pipe in pipes.items():
            for dname, clips in datasets.items():
                g = evaluate_generation(pipe, clips[:generation_clips], generate_steps)
                gen[f"{name}/{dname}"] = g
                console.print(f"generation {name}/{dname}: " + _figures(g))
    heldout = {}
    if heldout_clips:
        from .eval.synthrooms import evaluate_synthrooms

        for name, pipe in pipes.items():
            heldout[name] = evaluate_synthrooms(pipe, clips=heldout_clips, generate_clips=max(1, heldout_clips // 4))
            console.print(f"held-out SynthRooms, {name}: " + _figures(heldout[name]))
            for kind, figures in heldout[name]["by_kind"].items():
                console.print(f"  {kind}: " + _figures(figures))
    write_text_atomic(out, json.dumps({"pose": rows, "generation": gen, "heldout_synthrooms": heldout}, indent=2))
    console.print(f"wrote {out}")


def _figures(d: dict) -> str:
    """One line of a result dict's scalars (nested breakdowns are printed on their own lines)."""
    scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scalars.items())


def main() -> None:
    try:
        app()  # standalone: click turns usage errors into a message and exit code 2
    except (InputError, ValueError) as e:  # bad input reaches here as ValueError from the library's checks
        print(f"raxels: error: {first_line(e)}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
