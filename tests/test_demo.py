import torch

from raxels.demo import run_demo
from raxels.io import read_image
from raxels.model import build_model, model_config
from raxels.tasks import PipelineConfig, write_pipeline_config


def test_demo_writes_a_complete_report(tmp_path):
    torch.manual_seed(0)
    cfg = model_config("tiny", dim=32, heads=2, ffn_dim=64, num_layers=1, ray_dim=32, ray_heads=2, ray_ffn_dim=64)
    model = tmp_path / "model"
    build_model(cfg).save_pretrained(model)
    write_pipeline_config(model, PipelineConfig(height=32, width=32))
    report = run_demo(tmp_path / "demo", model, synth_clips=1, gen_steps=1)
    html = report.read_text()
    for needle in (
        "synthrooms_0_generated.mp4",
        "synthrooms_0_trajectory.png",
        "synthrooms_0_raxels_est.png",
        "synthrooms_0_joint.mp4",
        "self-consistency",
        "RRA@15",
        "PSNR",
    ):
        assert needle in html, needle
    for src in ("synthrooms_0_generated.mp4", "synthrooms_0_trajectory.png", "metrics.json"):
        assert (tmp_path / "demo" / src).stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_demo_runs_a_wan_vae_model_and_names_its_codec(tmp_path, tiny_wan_vae):
    torch.manual_seed(0)
    cfg = model_config("tiny", in_channels=4, raxel_in_channels=4, dim=32, heads=2, ffn_dim=64, num_layers=1,
                       ray_dim=32, ray_heads=2, ray_ffn_dim=64)
    model = tmp_path / "model"
    build_model(cfg).save_pretrained(model)
    write_pipeline_config(model, PipelineConfig(height=32, width=32, codec="wan-vae", vae=str(tiny_wan_vae),
                                                raxel_scale=0.5, train_frames=(5,)))
    html = run_demo(tmp_path / "demo", model, synth_clips=1, gen_steps=1).read_text()
    assert "wan-vae codec" in html and "synthrooms_0_joint.mp4" in html
    # The true raxel strip is drawn at the size the model makes raxels (half the frame here), as the estimated one.
    est, true = (read_image(tmp_path / "demo" / f"synthrooms_0_raxels_{k}.png") for k in ("est", "true"))
    assert est.shape == true.shape and est.shape[-2] == 16
