"""Geometry benchmarks at the paper's clip size (81 frames at 352x624), on synthetic data.

:func:`geometry_benchmarks` returns exactly three numbers (wall-clock seconds, best of ``repeats``):
- ``recover_81x352x624_s``: :func:`one4d.geometry.recover_cameras` with default settings on an analytic
  handheld-camera pointmap video (17.8M points).
- ``ply_export_81x352x624_s``: :func:`one4d.export.export_ply` of all 17.8M colored points (merged, no
  subsampling), from the ``[F, H, W, 3]`` arrays to a finished file.
- ``ply_export_vs_trimesh_ratio``: that time divided by trimesh writing the same points and colors
  (``trimesh.PointCloud(...).export(path)``, its binary PLY writer) to the same folder.
Files go to a temporary folder that is removed afterwards. Timings depend on the machine's load.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path


def geometry_benchmarks(repeats: int = 2) -> dict[str, float]:
    """Measure camera recovery and PLY export at 81x352x624; see the module docstring for the keys."""
    import trimesh

    from .export import export_ply
    from .geometry import make_sequence, recover_cameras

    F, H, W = 81, 352, 624
    scene = make_sequence(frames=F, height=H, width=W, focal=0.9, path="handheld", seed=0)

    recover = float("inf")
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        recover_cameras(scene.points)
        recover = min(recover, time.perf_counter() - t0)

    ours = theirs = float("inf")
    with tempfile.TemporaryDirectory(prefix="one4d-bench-") as tmp:
        for _ in range(max(1, repeats)):
            path = Path(tmp) / "ours.ply"
            t0 = time.perf_counter()
            export_ply(path, scene.points, scene.colors)
            ours = min(ours, time.perf_counter() - t0)
            path.unlink()

            path = Path(tmp) / "trimesh.ply"
            t0 = time.perf_counter()
            trimesh.PointCloud(scene.points.reshape(-1, 3), colors=scene.colors.reshape(-1, 3)).export(str(path))
            theirs = min(theirs, time.perf_counter() - t0)
            path.unlink()
    return {
        "recover_81x352x624_s": round(recover, 3),
        "ply_export_81x352x624_s": round(ours, 3),
        "ply_export_vs_trimesh_ratio": round(ours / theirs, 3),
    }
