"""Long-clip benchmark: time and peak memory of full-video reconstruction at 17 and 129 frames.

Each length runs in a fresh Python process (so peak RSS is that run's own), on the embedded model with
one thread and 10 sampling steps per window, on a held-out procedural scene: load the model, reconstruct
window by window, recover cameras, write the output folder. Rows: ``long_{F}f_s`` (seconds),
``long_{F}f_peak_rss_mb``, ``long_{F}f_windows``, and the ratios 129 / 17 of peak memory
(``long_peak_rss_ratio``, target <= 1.2) and of seconds per window (``long_seconds_per_window_ratio``:
1.0 is linear growth in the number of windows).
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

_CHILD = """
import json, resource, tempfile, time, sys
import torch
torch.set_num_threads(1)
from one4d.data import render_scene
from one4d.export.result_folder import write_result_folder
from one4d.long_video import generate_long, plan_long_clip
from one4d.pipeline import One4DPipeline
from one4d.sampling import SamplerSettings
frames = int(sys.argv[1])
scene = render_scene(1_000_000, frames=frames)
t0 = time.perf_counter()
pipe = One4DPipeline.from_folder("embedded")
result = generate_long(pipe, frames, 64, 64, scene.rgb, list(range(frames)), SamplerSettings(10, 1.0), prompt=scene.caption)
with tempfile.TemporaryDirectory() as out:
    write_result_folder(out, result, scene.rgb, 8.0, 200_000)
seconds = time.perf_counter() - t0
windows = len(plan_long_clip(frames, pipe.defaults.frames, pipe.defaults.overlap, range(frames)))
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "windows": windows}))
"""


def _run(frames: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(frames)], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"long-clip benchmark at {frames} frames failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def long_video_benchmarks(short: int = 17, long: int = 129) -> dict[str, Any]:
    """Seconds and peak RSS of reconstructing a ``short`` and a ``long`` clip; see the module docstring."""
    a, b = _run(short), _run(long)
    out: dict[str, Any] = {}
    for frames, row in ((short, a), (long, b)):
        out[f"long_{frames}f_s"] = round(row["seconds"], 2)
        out[f"long_{frames}f_peak_rss_mb"] = round(row["peak_rss_mb"], 1)
        out[f"long_{frames}f_windows"] = row["windows"]
    out["long_peak_rss_ratio"] = round(b["peak_rss_mb"] / a["peak_rss_mb"], 3)
    out["long_seconds_per_window_ratio"] = round((b["seconds"] / b["windows"]) / (a["seconds"] / a["windows"]), 3)
    return out
