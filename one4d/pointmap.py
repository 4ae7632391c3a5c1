"""Invertible normalization of pointmaps to [-1, 1], so the RGB VAE can encode them as a 3-channel video.

Decision (the paper does not give the function): per clip, shift along the optical axis by the median
depth ``m`` of valid points and divide by a robust extent ``s`` (the 98th percentile of
max(|x|, |y|, |z - m|) over valid points): ``n = clip(((x, y, z) - (0, 0, m)) / s, -1, 1)``. Rotation is
untouched, so the frame-0 camera looks down +z in normalized space too; only points beyond the percentile
are clipped. ``(m, s)`` travel with the pointmap as :class:`Normalization`. A generated pointmap has no
metric scale: it stays in normalized units (``Normalization.identity()``), scale-ambiguous as any monocular
reconstruction.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import One4DInputError

PERCENTILE = 98.0


@dataclass(frozen=True)
class Normalization:
    """Parameters of the normalization: ``n = (p - (0, 0, shift_z)) / scale``."""

    shift_z: float
    scale: float

    @staticmethod
    def identity() -> "Normalization":
        return Normalization(0.0, 1.0)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> "Normalization":
        return Normalization(float(d["shift_z"]), float(d["scale"]))


def _check(points: np.ndarray) -> None:
    if points.ndim != 4 or points.shape[-1] != 3:
        raise One4DInputError(f"pointmap must be [F, H, W, 3] XYZ, got shape {tuple(points.shape)}.")


def fit_normalization(points: np.ndarray, valid: np.ndarray | None = None) -> Normalization:
    """Fit ``(shift_z, scale)`` on the valid, finite points of a clip."""
    _check(points)
    ok = np.isfinite(points).all(-1)
    if valid is not None:
        ok &= valid.astype(bool)
    p = points[ok]
    if p.shape[0] == 0:
        raise One4DInputError("pointmap has no valid finite point; check the depth / valid mask.")
    if float((p.max(0) - p.min(0)).max()) <= 1e-8:
        raise One4DInputError("pointmap has zero extent (all points coincide); it cannot be normalized.")
    m = float(np.median(p[:, 2]))
    dev = np.abs(p - np.array([0.0, 0.0, m], dtype=p.dtype)).max(-1)
    s = float(np.percentile(dev, PERCENTILE))
    if not s > 1e-8:
        raise One4DInputError("pointmap extent is zero after outlier removal; most points coincide with the image center ray.")
    return Normalization(m, s)


def normalize(points: np.ndarray, norm: Normalization) -> np.ndarray:
    """Map points into [-1, 1] (clipped); invalid (non-finite) points become 0."""
    _check(points)
    n = (points - np.array([0.0, 0.0, norm.shift_z], dtype=np.float32)) / norm.scale
    return np.clip(np.nan_to_num(n, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0).astype(np.float32)


def denormalize(normalized: np.ndarray, norm: Normalization) -> np.ndarray:
    """Inverse of :func:`normalize` for points inside the clip range."""
    _check(normalized)
    return (normalized.astype(np.float32) * norm.scale + np.array([0.0, 0.0, norm.shift_z], dtype=np.float32)).astype(np.float32)
