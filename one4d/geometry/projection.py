"""Pinhole camera model, pixel grid and rotation helpers shared by recovery, metrics and export.

Conventions (binding for the whole library):
- Camera axes are OpenCV's: x right, y down, z forward. World = camera of frame 0.
- Pixel coordinates are OpenCV's: pixel (u, v) = (column, row) has its center at integer coordinates,
  so the image center, where the principal point sits, is ((W - 1) / 2, (H - 1) / 2).
  COLMAP puts pixel centers at +0.5; the COLMAP exporter adds 0.5 to cx, cy.
- ``K [F, 3, 3]`` in pixels; poses are camera-to-world ``c2w [F, 4, 4]``.
- Depth is z-depth (distance along the optical axis), so a pixel lifts to
  ``X_world = R_c2w @ (depth * K^-1 [u, v, 1]) + o``, the paper's ``R_i^T (D K_i^-1 [u, v, 1]) + o_i``.
"""
from __future__ import annotations

import numpy as np

from .inputs import as_float_array, as_intrinsics, as_poses
from ..errors import One4DInputError


def principal_point(height: int, width: int) -> tuple[float, float]:
    """Principal point at the image center in OpenCV pixel coordinates: ((W-1)/2, (H-1)/2)."""
    return (width - 1) / 2.0, (height - 1) / 2.0


def intrinsics_from_focal(focal: np.ndarray | float, height: int, width: int, frames: int | None = None) -> np.ndarray:
    """Build ``K [F, 3, 3]`` (float32) from per-frame focal lengths in pixels, principal point at the center."""
    f = np.atleast_1d(np.asarray(focal, dtype=np.float64))
    if frames is not None and f.size == 1:
        f = np.full(frames, float(f[0]))
    cx, cy = principal_point(height, width)
    K = np.zeros((f.size, 3, 3), dtype=np.float64)
    K[:, 0, 0] = f
    K[:, 1, 1] = f
    K[:, 0, 2] = cx
    K[:, 1, 2] = cy
    K[:, 2, 2] = 1.0
    return K.astype(np.float32)


def pixel_grid(height: int, width: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Row-major pixel coordinates ``(u, v)`` (each ``[h, w]``) of a grid with the given stride."""
    v, u = np.mgrid[0:height:stride, 0:width:stride]
    return u.astype(np.float64), v.astype(np.float64)


def unproject_depth(depth: np.ndarray, K: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """Lift z-depth ``[F, H, W]`` to world points ``[F, H, W, 3]`` (float32) with ``K`` and ``c2w``."""
    d = as_float_array(depth, "depth", np.float64)
    if d.ndim == 2:
        d = d[None]
    if d.ndim != 3:
        raise One4DInputError(f"depth has shape {tuple(d.shape)}; expected [F, H, W].")
    F, H, W = d.shape
    K = as_intrinsics(K, F)
    c2w = as_poses(c2w, F)
    u, v = pixel_grid(H, W)
    x = (u[None] - K[:, 0, 2, None, None]) / K[:, 0, 0, None, None]
    y = (v[None] - K[:, 1, 2, None, None]) / K[:, 1, 1, None, None]
    cam = np.stack([x * d, y * d, d], axis=-1)
    world = np.einsum("fij,fhwj->fhwi", c2w[:, :3, :3], cam) + c2w[:, None, None, :3, 3]
    return world.astype(np.float32)


def project_points(points: np.ndarray, K: np.ndarray, c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points ``[..., 3]`` into one camera: returns pixels ``[..., 2]`` and z-depth ``[...]``."""
    p = np.asarray(points, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    c2w = np.asarray(c2w, dtype=np.float64).reshape(4, 4)
    cam = (p - c2w[:3, 3]) @ c2w[:3, :3]  # R^T (p - o) for row vectors
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.stack([K[0, 0] * cam[..., 0] / z + K[0, 2], K[1, 1] * cam[..., 1] / z + K[1, 2]], axis=-1)
    return uv, z


def nearest_rotation(M: np.ndarray) -> np.ndarray:
    """Closest proper rotation(s) to ``M [..., 3, 3]`` in the Frobenius sense (SVD, det = +1)."""
    U, _, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    d = np.where(d == 0, 1.0, d)
    S = np.zeros(U.shape[:-2] + (3,), dtype=M.dtype)
    S[..., 0] = 1.0
    S[..., 1] = 1.0
    S[..., 2] = d
    return (U * S[..., None, :]) @ Vt


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Rotation angle in degrees of rotation matrices ``[..., 3, 3]`` (robust near 0 and 180 degrees)."""
    R = np.asarray(R, dtype=np.float64)
    # atan2 of the axis magnitude against the trace is accurate at small angles, unlike acos.
    axis = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    s = np.linalg.norm(axis, axis=-1)
    c = np.trace(R, axis1=-2, axis2=-1) - 1.0
    return np.degrees(np.arctan2(s, c))
