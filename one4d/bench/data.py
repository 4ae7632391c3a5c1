"""Procedural-scene benchmarks: how long :func:`one4d.data.render_scene` takes, on this machine.

:func:`data_benchmarks` returns flat figures (wall-clock seconds, median over ``scenes`` seeds, after one
warm-up render so imports and first-call costs are not counted):
- ``render_scene_17x64x64_s``: one scene at the default size (17 frames of 64x64), as the tests render it.
- ``render_scene_9x48x80_s``: one non-square scene of 9 frames at 48x80 (the size of the shape tests).
- ``render_dataset_8x17x64x64_s``: :func:`one4d.data.render_dataset` of 8 scenes at 17x64x64, stacked.
Timings depend on the machine's load (a shared 2-core CPU measured about 35 ms per default scene).
"""
from __future__ import annotations

import statistics
import time

from ..data import render_dataset, render_scene


def _median_seconds(fn, seeds) -> float:
    times = []
    for seed in seeds:
        t0 = time.perf_counter()
        fn(seed)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def data_benchmarks(scenes: int = 3) -> dict[str, float]:
    """Measure procedural scene rendering; see the module docstring for the keys."""
    seeds = range(max(1, scenes))
    render_scene(0)  # warm-up
    default = _median_seconds(render_scene, seeds)
    small = _median_seconds(lambda s: render_scene(s, frames=9, height=48, width=80), seeds)
    t0 = time.perf_counter()
    render_dataset(range(8), frames=17, height=64, width=64)
    dataset = time.perf_counter() - t0
    return {
        "render_scene_17x64x64_s": round(default, 4),
        "render_scene_9x48x80_s": round(small, 4),
        "render_dataset_8x17x64x64_s": round(dataset, 4),
    }
