"""raxels_to_cameras throughput at 64x64, cameras/s (goal >= 20k/s on this CPU), with the accuracy each setting
keeps: max rotation error on exact raxels and the median / 95th percentile under noise (sigma 0.02 on [-1, 1]
raxel values, clamped). Prints JSON per setting."""

import json
import time

import torch

from raxels.cameras import Cameras, canonicalise, intrinsics, project_to_rotation, relative_rotation_deg, rt_to_matrix
from raxels.raxels import cameras_to_raxels, raxels_to_cameras

SETTINGS = {
    "accurate (default): all 4096 px, robust, 4 refinement steps": dict(),
    "256 px, robust, 4 refinement steps, centred principal point (what Pipeline decodes with)": dict(
        max_points=256, intrinsics_model="centred"
    ),
    "fast: 256 px, linear fits only": dict(refine_iters=0, robust_iters=0, max_points=256),
    "fastest: 64 px, linear fits only": dict(refine_iters=0, robust_iters=0, max_points=64),
}
NOISE = 0.02


def cameras(n: int) -> Cameras:
    g = torch.Generator().manual_seed(0)
    R = project_to_rotation(torch.randn(1, n, 3, 3, generator=g, dtype=torch.float64))
    f = 40 + 30 * torch.rand(1, n, generator=g, dtype=torch.float64)
    K = intrinsics(f, f, torch.full_like(f, 32.0), torch.full_like(f, 32.0))
    return canonicalise(Cameras(K, rt_to_matrix(R, torch.randn(1, n, 3, generator=g, dtype=torch.float64)), 64, 64))[0]


def main() -> None:
    cams = cameras(8192)
    clean = cameras_to_raxels(cams).float()
    g = torch.Generator().manual_seed(1)
    noisy = (clean + NOISE * torch.randn(clean.shape, generator=g)).clamp(-1, 1)
    for name, kw in SETTINGS.items():
        n = 8192 if kw.get("refine_iters") == 0 else 1024 if kw else 256
        raxels_to_cameras(clean[:, :64], **kw)  # warm-up
        t0 = time.perf_counter()
        est = raxels_to_cameras(clean[:, :n], **kw)
        dt = time.perf_counter() - t0
        err = relative_rotation_deg(est.R.double(), cams.R[:, :n])
        m = min(n, 1024)
        err_noisy = relative_rotation_deg(raxels_to_cameras(noisy[:, :m], **kw).R.double(), cams.R[:, :m])
        print(
            json.dumps(
                {
                    "bench": "raxel_decode",
                    "setting": name,
                    "size": "64x64",
                    "cameras": n,
                    "threads": torch.get_num_threads(),
                    "cameras_per_s": round(n / dt, 1),
                    "max_rot_err_deg": err.max().item(),
                    f"noise_{NOISE}_median_rot_err_deg": round(err_noisy.median().item(), 3),
                    f"noise_{NOISE}_p95_rot_err_deg": round(err_noisy.quantile(0.95).item(), 3),
                    "goal_cameras_per_s": 20000,
                    "met": n / dt >= 20000,
                }
            )
        )


if __name__ == "__main__":
    main()
