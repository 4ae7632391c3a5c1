"""Long-clip reconstruction on the held-out suite: windowed vs per-window quality, and the seams.

For each held-out scene rendered at ``frames`` frames (the same motion sampled more densely than the
17-frame suite), every frame is observed and the clip runs window by window (:mod:`one4d.long_video`).
Reported, averaged over scenes:

- ``depth_absrel`` / ``delta_1_25`` of the whole stitched clip (one median scale for the sequence) and
  ``window_depth_absrel``: the mean of each window on its own (its own cameras and median scale), the
  figure the stitch is measured against (``absrel_ratio`` = windowed / per-window);
- ``ate`` and ``rpe_trans`` / ``rpe_rot_deg`` over the whole sequence after Sim(3) alignment;
- ``seam_depth_ratio`` and ``seam_pose_ratio``: how much the prediction jumps between consecutive frames
  at window boundaries (a window's first frame, and the first frame after its overlap) against its jumps
  between the other consecutive frames (1.0: seams are invisible), and ``truth_seam_depth_ratio`` /
  ``truth_seam_pose_ratio``, the same ratios of the ground truth at the same frames: what the scene's own
  motion gives there. (A ratio of the two would divide by zero on scenes whose camera stands still.)
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data import render_scene
from ..geometry.result import assemble_result
from ..long_video import WindowSpec, pipeline_window_runner, plan_long_clip, run_long_clip
from ..pipeline import One4DPipeline
from ..sampling import SamplerSettings
from .metrics import depth_metrics, pose_metrics
from .suite import mean_rows


def boundary_pairs(specs: list[WindowSpec], num_frames: int) -> set[int]:
    """Indices ``t`` of the consecutive-frame pairs ``(t - 1, t)`` that straddle a window boundary."""
    out = set()
    for k in range(1, len(specs)):
        out.add(specs[k].start)
        out.add(specs[k - 1].stop)
    return {t for t in out if 0 < t < num_frames}


def frame_jumps(depth: np.ndarray, valid: np.ndarray, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair ``(t - 1, t)``: median relative depth change on pixels valid in both, and camera motion
    (translation in units of the median depth, plus rotation in radians)."""
    f = depth.shape[0]
    scale = float(np.median(depth[valid])) or 1.0
    dj, pj = np.zeros(f), np.zeros(f)
    for t in range(1, f):
        both = valid[t] & valid[t - 1]
        dj[t] = float(np.median(np.abs(depth[t][both] - depth[t - 1][both]))) / scale if both.any() else 0.0
        rel = np.linalg.inv(c2w[t - 1]) @ c2w[t]
        angle = np.arccos(np.clip((np.trace(rel[:3, :3]) - 1) / 2, -1, 1))
        pj[t] = np.linalg.norm(rel[:3, 3]) / scale + angle
    return dj, pj


def seam_ratio(jumps: np.ndarray, seams: set[int]) -> float | None:
    """Mean jump at the seams over the mean jump at the other consecutive-frame pairs (None: no seam)."""
    at = sorted(seams)
    inner = [t for t in range(1, len(jumps)) if t not in seams]
    if not at or not inner or not jumps[inner].mean() > 0:
        return None
    return float(jumps[at].mean() / jumps[inner].mean())


def evaluate_long_scene(pipe: One4DPipeline, seed: int, frames: int, settings: SamplerSettings, window: int,
                        overlap: int) -> dict[str, Any]:
    """All long-clip figures of one scene (module docstring)."""
    scene = render_scene(seed, frames=frames)
    f, h, w = scene.rgb.shape[:3]
    specs = plan_long_clip(f, window, overlap, list(range(f)))
    runner = pipeline_window_runner(pipe, h, w, settings, len(specs), prompt=scene.caption)
    windows: list[tuple[np.ndarray, np.ndarray]] = []

    def recording(spec, observed, indices):
        out = runner(spec, observed, indices)
        windows.append(out)
        return out

    res = run_long_clip(recording, specs, f, scene.rgb, list(range(f)))
    ok = res.valid & scene.valid & np.isfinite(res.depth) & (res.depth > 0)
    d = depth_metrics(res.depth, scene.depth, ok, alignment="median", max_depth=None)
    p = pose_metrics(res.c2w, scene.c2w)
    per_window = []
    for spec, (rgb, pts) in zip(specs, windows):
        wr = assemble_result(rgb, pts, spec.observed)
        sl = slice(spec.start, spec.stop)
        wok = wr.valid & scene.valid[sl] & np.isfinite(wr.depth) & (wr.depth > 0)
        per_window.append(depth_metrics(wr.depth, scene.depth[sl], wok, alignment="median", max_depth=None)["abs_rel"])
    seams = boundary_pairs(specs, f)
    pd, pp = frame_jumps(res.depth, ok, res.c2w)
    td, tp = frame_jumps(scene.depth, scene.valid, scene.c2w)
    window_absrel = float(np.mean(per_window))
    return {"depth_absrel": d["abs_rel"], "delta_1_25": d["delta_1_25"], "window_depth_absrel": window_absrel,
            "absrel_ratio": d["abs_rel"] / window_absrel, "ate": p["ate"], "rpe_trans": p["rpe_trans"],
            "rpe_rot_deg": p["rpe_rot"], "seam_depth_ratio": seam_ratio(pd, seams), "seam_pose_ratio": seam_ratio(pp, seams),
            "truth_seam_depth_ratio": seam_ratio(td, seams), "truth_seam_pose_ratio": seam_ratio(tp, seams), "windows": len(specs)}


def run_long_suite(pipe: One4DPipeline, seeds: Sequence[int], frames: int, settings: SamplerSettings,
                   window: int | None = None, overlap: int | None = None) -> dict[str, Any]:
    """:func:`evaluate_long_scene` averaged over scenes."""
    window = window or pipe.defaults.frames
    overlap = pipe.defaults.overlap if overlap is None else overlap
    rows = [evaluate_long_scene(pipe, s, frames, settings, window, overlap) for s in seeds]
    return {**mean_rows(rows), "frames": frames, "window": window, "overlap": overlap, "scenes": len(rows)}
