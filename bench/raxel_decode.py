"""raxels_to_cameras throughput at 64x64, cameras/s (goal >= 20k/s on this CPU). Prints JSON per setting."""

import json
import time

import torch

from raxels.cameras import Cameras, canonicalise, intrinsics, project_to_rotation, relative_rotation_deg, rt_to_matrix
from raxels.raxels import cameras_to_raxels, raxels_to_cameras

SETTINGS = {
    "accurate (default)": dict(),
    "fast: 256 px, no refinement": dict(refine_iters=0, robust_iters=0, max_points=256),
    "fastest: 64 px, no refinement": dict(refine_iters=0, robust_iters=0, max_points=64),
}


def cameras(n: int) -> Cameras:
    g = torch.Generator().manual_seed(0)
    R = project_to_rotation(torch.randn(1, n, 3, 3, generator=g, dtype=torch.float64))
    f = 40 + 30 * torch.rand(1, n, generator=g, dtype=torch.float64)
    K = intrinsics(f, f, torch.full_like(f, 32.0), torch.full_like(f, 32.0))
    return canonicalise(Cameras(K, rt_to_matrix(R, torch.randn(1, n, 3, generator=g, dtype=torch.float64)), 64, 64))[0]


def main() -> None:
    for name, kw in SETTINGS.items():
        n = 512 if not kw else 8192
        cams = cameras(n)
        r = cameras_to_raxels(cams).float()
        raxels_to_cameras(r[:, :64], **kw)  # warm-up
        t0 = time.perf_counter()
        est = raxels_to_cameras(r, **kw)
        dt = time.perf_counter() - t0
        err = relative_rotation_deg(est.R.double(), cams.R).max().item()
        print(
            json.dumps(
                {
                    "bench": "raxel_decode",
                    "setting": name,
                    "size": "64x64",
                    "cameras": n,
                    "threads": torch.get_num_threads(),
                    "cameras_per_s": round(n / dt, 1),
                    "max_rot_err_deg": err,
                    "goal_cameras_per_s": 20000,
                    "met": n / dt >= 20000,
                }
            )
        )


if __name__ == "__main__":
    main()
