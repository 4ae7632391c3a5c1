"""A generated 4D clip with its cameras: recovery from a decoded pointmap, never failing on degenerate ones.

The generated pointmap lives in the normalized space of :mod:`one4d.pointmap` (no metric scale). After
camera recovery the result is re-anchored so that, as everywhere in the project, the world is the camera
of frame 0 (OpenCV axes): ``points``, ``c2w`` and ``depth`` agree with each other.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import One4DInputError
from ..pointmap import Normalization
from ..progress import chunks, track
from .cameras import CameraEstimate, recover_cameras


@dataclass
class One4DResult:
    """A generated or reconstructed 4D clip. Arrays are numpy, frames first."""

    rgb: np.ndarray  # [F, H, W, 3] float32 in [0, 1]
    points: np.ndarray  # [F, H, W, 3] float32, world = frame-0 camera (OpenCV)
    depth: np.ndarray  # [F, H, W] float32 z-depth
    valid: np.ndarray  # [F, H, W] bool
    K: np.ndarray  # [F, 3, 3]
    c2w: np.ndarray  # [F, 4, 4] camera-to-world, c2w[0] = I
    indices: list[int]  # observed frames
    normalization: Normalization = field(default_factory=Normalization.identity)
    raw_points: Optional[np.ndarray] = None  # the decoded normalized pointmap before re-anchoring


def anchor_to_first_camera(points: np.ndarray, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Express points and poses in the frame-0 camera: ``X' = inv(c2w[0]) X``, ``c2w' = inv(c2w[0]) c2w``
    (a few frames at a time: cancellable, and float64 copies of one piece only)."""
    inv0 = np.linalg.inv(c2w[0].astype(np.float64))
    new_c2w = (inv0 @ c2w.astype(np.float64)).astype(np.float32)
    new_pts = np.empty(points.shape, np.float32)
    for s in track("re-anchoring the points", chunks(len(points), 16)):
        new_pts[s] = points[s].astype(np.float64) @ inv0[:3, :3].T + inv0[:3, 3]
    return new_pts, new_c2w


def cameras_for_generated(points: np.ndarray, valid: np.ndarray | None = None, **recover_kwargs) -> CameraEstimate:
    """Cameras and depth of a generated pointmap, never failing on degenerate geometry.

    A generated pointmap can be too degenerate for camera recovery (e.g. after one or two sampling steps).
    Then the estimate keeps the pointmap as seen from a fixed frame-0 camera (identity poses, a 53-degree
    field of view, depth = z), ``stats["fallback"]`` says why, and a warning is issued: a bad generation
    should give a visible, explained result rather than fail the whole run.
    """
    try:
        return recover_cameras(points, valid, **recover_kwargs)
    except One4DInputError as exc:
        if not np.isfinite(points).any():
            raise
        warnings.warn(f"camera recovery failed on the generated pointmap ({exc}); using fixed cameras", stacklevel=2)
        f, h, w, _ = points.shape
        focal = float(max(h, w))
        K = np.tile(np.array([[focal, 0, (w - 1) / 2], [0, focal, (h - 1) / 2], [0, 0, 1]], np.float32), (f, 1, 1))
        depth = np.nan_to_num(points[..., 2]).astype(np.float32)
        ok = depth > 0 if valid is None else (depth > 0) & valid
        return CameraEstimate(K, np.tile(np.eye(4, dtype=np.float32), (f, 1, 1)), np.where(ok, depth, 0), ok,
                              np.full(f, focal, np.float32), {"fallback": str(exc)})


def assemble_result(rgb: np.ndarray, normalized_points: np.ndarray, indices: list[int], recover: bool = True,
                    valid: np.ndarray | None = None) -> One4DResult:
    """Recover cameras/depth from a decoded normalized pointmap and re-anchor to the frame-0 camera.
    ``valid`` marks the points that exist (e.g. those a stitch covered); all do when it is None."""
    f, h, w, _ = rgb.shape
    valid = np.ones((f, h, w), bool) if valid is None else np.asarray(valid, bool)
    if not recover:
        depth = normalized_points[..., 2].copy()
        return One4DResult(rgb, normalized_points, depth, valid, np.tile(np.eye(3, dtype=np.float32), (f, 1, 1)),
                           np.tile(np.eye(4, dtype=np.float32), (f, 1, 1)), list(indices), raw_points=normalized_points)
    est = cameras_for_generated(normalized_points, None if valid.all() else valid)
    pts, c2w = anchor_to_first_camera(normalized_points, est.c2w)
    return One4DResult(rgb, pts, est.depth.astype(np.float32), est.valid & valid, est.K.astype(np.float32), c2w, list(indices),
                       raw_points=normalized_points)
