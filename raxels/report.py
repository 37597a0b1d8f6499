"""Figures and the HTML report: 3D trajectory plots, raxel image strips, videos, a metrics table."""

from __future__ import annotations

import html
import os

import matplotlib

matplotlib.use("Agg")  # headless: no display is ever needed
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

from .cameras import Cameras
from .io.atomic import atomic_path, write_text_atomic
from .io.image import write_image

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def plot_trajectories(path: str | os.PathLike, trajectories: dict[str, Cameras], title: str = "") -> None:
    """3D plot of camera centres and viewing directions (batch element 0 of each), OpenCV world (y down)."""
    fig = plt.figure(figsize=(5, 4.2), dpi=110)
    ax = fig.add_subplot(projection="3d")
    extent = 1e-6
    for (name, cams), colour in zip(trajectories.items(), COLOURS):
        c = cams.centres[0].double().numpy()
        z = cams.R[0, :, :, 2].double().numpy()
        # Plot x, z on the ground plane and -y up, so the picture reads like the scene.
        ax.plot(c[:, 0], c[:, 2], -c[:, 1], "-o", color=colour, markersize=2.5, label=name)
        L = 0.15
        for p, d in zip(c, z):
            ax.plot([p[0], p[0] + L * d[0]], [p[2], p[2] + L * d[2]], [-p[1], -p[1] - L * d[1]], color=colour, lw=0.7)
        extent = max(extent, float(np.abs(c).max()))
    lim = extent * 1.2 + 0.15
    ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim), ax.set_zlim(-lim, lim)
    ax.set_xlabel("x"), ax.set_ylabel("z (forward)"), ax.set_zlabel("up")
    ax.legend(loc="upper left", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def raxel_strip(path: str | os.PathLike, raxels: Tensor, max_frames: int = 8, reference: Tensor | None = None) -> None:
    """Raxel images [F, 3, H, W] in [-1, 1] side by side (x, y, z of o + d as r, g, b), each channel stretched to
    the range that `reference` (default: the images themselves) uses, so that estimated and true strips drawn
    against the same reference compare colour for colour."""
    idx = torch.linspace(0, raxels.shape[0] - 1, min(max_frames, raxels.shape[0])).round().long()
    strip = torch.cat(list(raxels[idx].float()), dim=-1)
    ref = strip if reference is None else reference.float().transpose(0, 1).flatten(1)[:, :, None]
    lo, hi = ref.amin((1, 2), keepdim=True), ref.amax((1, 2), keepdim=True)
    write_image(path, (((strip - lo) / (hi - lo).clamp_min(1e-6)) * 2 - 1).clamp(-1, 1))


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return html.escape(str(v))


def metrics_table(rows: list[dict]) -> str:
    if not rows:
        return "<p>No metrics.</p>"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_cell(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:right}
th{background:#f2f2f2}section{border-top:1px solid #ddd;padding-top:8px;margin-top:16px}
.row{display:flex;gap:16px;flex-wrap:wrap;align-items:flex-start}figure{margin:0}figcaption{font-size:12px;color:#555}
video,img.px{image-rendering:pixelated}"""


def write_report(path: str | os.PathLike, title: str, intro: str, summary: list[dict], sections: list[dict]) -> None:
    """sections: {"title", "text", "items": [{"kind": "video"|"image", "src", "caption", "width"}], "metrics": [...]}"""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1><p>{intro}</p>",
        "<h2>Metrics</h2>",
        metrics_table(summary),
    ]
    for sec in sections:
        parts.append(f"<section><h2>{html.escape(sec['title'])}</h2><p>{sec.get('text', '')}</p><div class='row'>")
        for it in sec.get("items", []):
            w = it.get("width", 256)
            src = html.escape(it["src"])
            if it["kind"] == "video":
                media = f"<video src='{src}' width='{w}' controls loop muted autoplay playsinline></video>"
            else:
                media = f"<img class='px' src='{src}' width='{w}'>"
            parts.append(f"<figure>{media}<figcaption>{html.escape(it.get('caption', ''))}</figcaption></figure>")
        parts.append("</div>")
        if sec.get("metrics"):
            parts.append(metrics_table(sec["metrics"]))
        parts.append("</section>")
    parts.append("</body></html>")
    write_text_atomic(path, "\n".join(parts))
