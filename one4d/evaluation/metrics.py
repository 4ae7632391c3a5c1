"""Video depth and camera pose metrics, following the MonST3R / Geo4D evaluation protocol.

Depth (per sequence, all frames pooled; the paper reports Sintel and Bonn this way):
- Pixels count when the ground truth is finite, ``> 0`` and, if ``max_depth`` is set, ``< max_depth``
  (the protocol uses 70 for Sintel and Bonn), and the prediction is finite.
- One alignment for the whole sequence: ``"median"`` scale (``s = median(gt) / median(pred)``) or
  ``"scale_shift"`` (``s * pred + t``). For scale and shift the reference protocol minimises the L1 error
  (least absolute deviation) with Adam started from the median scale; we solve the same L1 problem to
  convergence by iteratively reweighted least squares (``fit="l1"``, default), or by plain least squares
  (``fit="l2"``). ``"none"`` evaluates metric depth as is.
- After alignment the prediction is optionally clipped to ``post_clip_max`` (70 for Sintel in the
  protocol) and to a tiny positive minimum.
- ``abs_rel = mean(|pred - gt| / gt)``, ``delta_1_25 = mean(max(pred / gt, gt / pred) < 1.25)``
  (a fraction in [0, 1]; papers print it in percent).

Camera poses (camera-to-world ``[F, 4, 4]``; the protocol runs the ``evo`` package with
``align=True, correct_scale=True``):
- The predicted trajectory is aligned to the ground truth by the Sim(3) Umeyama fit of the camera
  centers; rotations are rotated, centers scaled, rotated and shifted.
- ``ate``: RMSE of the aligned camera centers against the ground truth.
- ``rpe_trans`` / ``rpe_rot`` (degrees): between consecutive frames (delta = 1 frame), the relative
  motion error ``E = inv(inv(G_i) G_{i+1}) (inv(P_i) P_{i+1})``, translation norm and rotation angle,
  RMSE over the pairs.
A prediction whose centers do not move (zero extent) cannot be scaled: it is aligned by rotation-free
centering only (scale 0), which yields the spread of the ground truth as ATE instead of a crash.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import One4DInputError
from ..geometry.align import Sim3, umeyama
from ..geometry.inputs import as_float_array, as_mask, as_poses
from ..geometry.projection import rotation_angle_deg

__all__ = [
    "align_depth_median",
    "align_depth_scale_shift",
    "depth_metrics",
    "ate",
    "rpe",
    "pose_metrics",
    "align_trajectory",
]


def _depth_pair(pred: Any, gt: Any, valid: Any, max_depth: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = as_float_array(pred, "pred", np.float64)
    g = as_float_array(gt, "gt", np.float64)
    if p.shape != g.shape:
        raise One4DInputError(f"pred has shape {p.shape} but gt has {g.shape}; resize the prediction to the ground truth.")
    m = np.isfinite(g) & (g > 0) & np.isfinite(p)
    if max_depth is not None:
        m &= g < max_depth
    if valid is not None:
        m &= as_mask(valid, p.shape, "valid")
    if not m.any():
        raise One4DInputError("depth_metrics: no pixel has a finite positive ground truth and prediction under max_depth.")
    return p, g, m


def align_depth_median(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Scale the whole prediction by ``median(gt) / median(pred)`` over valid pixels; returns (aligned, scale)."""
    p, g, m = _depth_pair(pred, gt, valid, None)
    mp = float(np.median(p[m]))
    if mp == 0:
        raise One4DInputError("align_depth_median: the median predicted depth is 0; the prediction has no scale.")
    s = float(np.median(g[m])) / mp
    return p * s, s


def align_depth_scale_shift(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, fit: str = "l1", iters: int = 50
) -> tuple[np.ndarray, float, float]:
    """Fit ``s * pred + t`` to gt over valid pixels (L1 by IRLS, or L2); returns (aligned, s, t)."""
    if fit not in ("l1", "l2"):
        raise One4DInputError(f"fit={fit!r}; use 'l1' (the protocol's least absolute deviation) or 'l2'.")
    p, g, m = _depth_pair(pred, gt, valid, None)
    x, y = p[m], g[m]
    A = np.stack([x, np.ones_like(x)], axis=1)
    if np.ptp(x) == 0:
        raise One4DInputError("align_depth_scale_shift: the prediction is constant; scale and shift are undefined.")
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    if fit == "l1":
        floor = 1e-9 * (1.0 + float(np.abs(y).mean()))
        for _ in range(iters):
            r = np.abs(A @ coef - y)
            w = 1.0 / np.maximum(r, floor)
            Aw = A * w[:, None]
            new = np.linalg.solve(A.T @ Aw + 1e-300 * np.eye(2), Aw.T @ y)
            done = np.allclose(new, coef, rtol=1e-12, atol=1e-15)
            coef = new
            if done:
                break
    s, t = float(coef[0]), float(coef[1])
    return p * s + t, s, t


def depth_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    valid: np.ndarray | None = None,
    alignment: str = "median",
    max_depth: float | None = 70.0,
    post_clip_max: float | None = None,
    fit: str = "l1",
) -> dict[str, float]:
    """AbsRel and delta<1.25 of a depth sequence ``[F, H, W]`` after one per-sequence alignment.

    ``alignment``: "median", "scale_shift" or "none". Returns abs_rel, delta_1_25, scale, shift, pixels.
    """
    p, g, m = _depth_pair(pred, gt, valid, max_depth)
    if alignment == "median":
        mp = float(np.median(p[m]))
        if mp <= 0:
            raise One4DInputError("depth_metrics: the median predicted depth is <= 0; median scaling is undefined.")
        s, t = float(np.median(g[m])) / mp, 0.0
    elif alignment == "scale_shift":
        _, s, t = align_depth_scale_shift(p, g, m, fit=fit)
    elif alignment == "none":
        s, t = 1.0, 0.0
    else:
        raise One4DInputError(f"alignment={alignment!r}; use 'median', 'scale_shift' or 'none'.")
    a = p[m] * s + t
    if post_clip_max is not None:
        a = np.minimum(a, post_clip_max)
    a = np.maximum(a, 1e-5)
    gm = g[m]
    abs_rel = float(np.mean(np.abs(a - gm) / gm))
    delta = float(np.mean(np.maximum(a / gm, gm / a) < 1.25))
    return {"abs_rel": abs_rel, "delta_1_25": delta, "scale": s, "shift": t, "pixels": int(m.sum())}


def _trajectories(pred_c2w: Any, gt_c2w: Any) -> tuple[np.ndarray, np.ndarray]:
    g = as_poses(gt_c2w, None, "gt_c2w")
    p = as_poses(pred_c2w, g.shape[0], "pred_c2w")
    if g.shape[0] < 2:
        raise One4DInputError("pose metrics need at least 2 frames.")
    return p, g


def align_trajectory(pred_c2w: np.ndarray, gt_c2w: np.ndarray) -> tuple[np.ndarray, Sim3]:
    """Sim(3)-align predicted camera-to-world poses to the ground truth by their centers (Umeyama)."""
    p, g = _trajectories(pred_c2w, gt_c2w)
    try:
        T = umeyama(p[:, :3, 3], g[:, :3, 3], with_scale=True)
    except One4DInputError:
        # Static prediction: only a shift onto the ground-truth centroid is defined.
        T = Sim3(0.0, np.eye(3), g[:, :3, 3].mean(0) - 0.0)
    return T.apply_to_poses(p), T


def ate(pred_c2w: np.ndarray, gt_c2w: np.ndarray) -> float:
    """Absolute trajectory error: RMSE of camera centers after Sim(3) alignment (protocol units: GT)."""
    aligned, _ = align_trajectory(pred_c2w, gt_c2w)
    g = as_poses(gt_c2w, None, "gt_c2w")
    return float(np.sqrt(np.mean(np.sum((aligned[:, :3, 3] - g[:, :3, 3]) ** 2, axis=1))))


def rpe(pred_c2w: np.ndarray, gt_c2w: np.ndarray) -> dict[str, float]:
    """Relative pose error between consecutive frames after Sim(3) alignment: RMSE translation, degrees."""
    aligned, _ = align_trajectory(pred_c2w, gt_c2w)
    g = as_poses(gt_c2w, None, "gt_c2w")
    rel_g = np.linalg.inv(g[:-1]) @ g[1:]
    rel_p = np.linalg.inv(aligned[:-1]) @ aligned[1:]
    E = np.linalg.inv(rel_g) @ rel_p
    trans = np.linalg.norm(E[:, :3, 3], axis=1)
    rot = rotation_angle_deg(E[:, :3, :3])
    return {"rpe_trans": float(np.sqrt(np.mean(trans**2))), "rpe_rot": float(np.sqrt(np.mean(rot**2)))}


def pose_metrics(pred_c2w: np.ndarray, gt_c2w: np.ndarray) -> dict[str, float]:
    """ATE, RPE translation and RPE rotation (degrees), the paper's camera pose table."""
    out = {"ate": ate(pred_c2w, gt_c2w)}
    out.update(rpe(pred_c2w, gt_c2w))
    return out
