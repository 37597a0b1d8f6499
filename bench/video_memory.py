"""Peak memory of `raxels estimate` on a 10-second 1080p video (240 frames; goal < 1 GB resident). Prints JSON.

The frames are resized to the model's size as they decode; the whole video as float32 would be 6 GB.
"""

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

FRAMES, W, H = 240, 1920, 1080

with tempfile.TemporaryDirectory() as tmp:
    video = Path(tmp, "hd.mp4")
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        blocks = np.random.default_rng(0).integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
        base = blocks.repeat(8, 0).repeat(8, 1)
        for i in range(FRAMES):  # a slow pan over blocky noise
            frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    cli = Path(sys.executable).with_name("raxels")
    t0 = time.perf_counter()
    subprocess.run([str(cli), "estimate", str(video), "--out", str(Path(tmp, "out"))], check=True, capture_output=True)
    seconds = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(
    json.dumps(
        {
            "bench": "video_memory",
            "command": "raxels estimate",
            "video": f"{FRAMES} frames, {W}x{H}",
            "whole_video_float32_mb": round(FRAMES * W * H * 3 * 4 / 2**20),
            "peak_rss_mb": round(peak_mb),
            "seconds": round(seconds, 1),
            "goal_mb": 1024,
            "met": peak_mb < 1024,
        }
    )
)
