"""Geometry benchmarks at the paper's clip size (81 frames at 352x624), on synthetic data.

:func:`geometry_benchmarks` returns exactly three numbers (wall-clock seconds, best of ``repeats``):
- ``recover_81x352x624_s``: :func:`one4d.geometry.recover_cameras` with default settings on an analytic
  handheld-camera pointmap video (17.8M points).
- ``ply_export_81x352x624_s``: :func:`one4d.export.export_ply` of all 17.8M colored points (merged, no
  subsampling), from the ``[F, H, W, 3]`` arrays to a finished file.
- ``ply_export_vs_trimesh_ratio``: that time divided by trimesh writing the same points and colors
  (``trimesh.PointCloud(...).export(path)``, its binary PLY writer) to the same folder.
Files go to a temporary folder that is removed afterwards. Timings depend on the machine's load.

:func:`geometry_accuracy` reproduces the error figures of docs/geometry.md (the same scenes as the tests).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import trimesh

from ..evaluation.metrics import ate
from ..export import export_ply
from ..geometry import Sim3, make_sequence, plan_windows, recover_cameras, rotation_angle_deg, stitch_windows, umeyama


def geometry_benchmarks(repeats: int = 2) -> dict[str, float]:
    """Measure camera recovery and PLY export at 81x352x624; see the module docstring for the keys."""
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


def _camera_errors(seq, est) -> dict[str, float]:
    R_rel = np.transpose(est.c2w[:, :3, :3], (0, 2, 1)).astype(np.float64) @ seq.c2w[:, :3, :3].astype(np.float64)
    inl = ~seq.outlier_mask
    extent = float(np.ptp(seq.points[inl], axis=0).max())
    m = est.valid & inl
    return {
        "focal_err": float(np.max(np.abs(est.focal / seq.focal - 1.0))),
        "rot_err_deg": float(rotation_angle_deg(R_rel).max()),
        "center_err_rel": float(np.linalg.norm(est.c2w[:, :3, 3] - seq.c2w[:, :3, 3], axis=-1).max()) / extent,
        "depth_absrel": float(np.mean(np.abs(est.depth[m] - seq.depth[m]) / seq.depth[m])),
        "outliers_caught": float((~est.valid[seq.outlier_mask]).mean()) if seq.outlier_mask.any() else float("nan"),
    }


def geometry_accuracy() -> dict[str, dict[str, float]]:
    """Recovery errors (max over frames) and stitching errors on the configurations the tests use.

    Keys: ``clean/<path>/f<focal>``, ``noisy/<path>/f<focal>`` (2% depth-relative noise, 5% outliers,
    9 frames at 48x80, seed 1 noisy / 3 clean), ``zoom/per_frame_focal`` and ``stitch/200_frames``
    (33-frame windows overlapping by 8, each in a random Sim(3), 0.5% noise, one window with 10% garbage).
    """
    out: dict[str, dict[str, float]] = {}
    for path, focal in [("orbit", 0.5), ("dolly", 1.0), ("pan", 2.5), ("handheld", 1.0), ("orbit", 2.5)]:
        seq = make_sequence(frames=9, height=48, width=80, focal=focal, path=path, seed=3)
        out[f"clean/{path}/f{focal}"] = _camera_errors(seq, recover_cameras(seq.points))
    seq = make_sequence(frames=9, height=48, width=80, focal=0.8, path="dolly", seed=4, zoom=0.4)
    out["zoom/per_frame_focal"] = _camera_errors(seq, recover_cameras(seq.points, shared_focal=False))
    for path, focal in [("orbit", 0.5), ("handheld", 1.0), ("dolly", 1.0), ("pan", 2.5)]:
        seq = make_sequence(frames=9, height=48, width=80, focal=focal, path=path, seed=1, noise=0.02, outliers=0.05)
        out[f"noisy/{path}/f{focal}"] = _camera_errors(seq, recover_cameras(seq.points))

    seq = make_sequence(frames=200, height=24, width=40, focal=0.9, path="handheld", seed=11)
    spans = plan_windows(200, 33, 8)
    rng = np.random.default_rng(2)
    windows, garbage = [], np.zeros(seq.depth.shape, bool)
    for k, (a, b) in enumerate(spans):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
        T = Sim3(float(np.exp(rng.uniform(np.log(0.3), np.log(3.0)))), R, rng.normal(scale=5.0, size=3))
        pts = seq.points[a:b].astype(np.float64) + rng.normal(scale=0.005, size=(b - a,) + seq.points.shape[1:]) * seq.depth[a:b, ..., None]
        if k == 3:
            bad = rng.random(pts.shape[:3]) < 0.1
            pts[bad] = rng.normal(scale=5.0, size=(int(bad.sum()), 3))
            garbage[a:b] |= bad
        windows.append(T.apply(pts).astype(np.float32))
    res = stitch_windows(windows, spans)
    good = res.valid & ~garbage
    G = umeyama(res.points[good], seq.points[good])
    extent = float(np.ptp(seq.points.reshape(-1, 3), axis=0).max())
    rms = float(np.sqrt(np.mean(np.sum((G.apply(res.points[good]) - seq.points[good]) ** 2, -1))))
    est = recover_cameras(res.points, res.valid, iters=30)
    out["stitch/200_frames"] = {
        "points_rms_rel_extent": rms / extent,
        "ate_rel_scene_extent": ate(est.c2w, seq.c2w) / extent,
        "ate_rel_trajectory_extent": ate(est.c2w, seq.c2w) / float(np.ptp(seq.c2w[:, :3, 3], axis=0).max()),
        "max_overlap_error": float(max(res.overlap_error)),
    }
    return out
