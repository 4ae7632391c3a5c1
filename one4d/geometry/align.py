"""Similarity transforms (Sim(3)) and their least-squares fit between corresponding 3D points.

:func:`umeyama` is the closed form of Umeyama (1991): weighted means, SVD of the cross-covariance, a
reflection guard, scale from the singular values. :func:`robust_umeyama` starts from the best of the plain fit and
random 3-pair fits by median residual (least median of squares), then runs iteratively reweighted least
squares with Cauchy weights (scale from the median residual); it tolerates up to about half wrong
correspondences (moving objects, flying points, garbage regions).
Used by long-video stitching (window to window through overlapping frames) and by the ATE metric.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import One4DInputError
from .inputs import as_float_array


@dataclass(frozen=True)
class Sim3:
    """``x -> scale * rotation @ x + translation``."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    @staticmethod
    def identity() -> "Sim3":
        """The identity transform."""
        return Sim3(1.0, np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points ``[..., 3]`` (NaNs stay NaN); keeps float32 input float32."""
        p = np.asarray(points)
        out = self.scale * (p.astype(np.float64) @ self.rotation.T) + self.translation
        return out.astype(p.dtype if np.issubdtype(p.dtype, np.floating) else np.float64)

    def apply_to_poses(self, c2w: np.ndarray) -> np.ndarray:
        """Move camera-to-world poses ``[..., 4, 4]`` into the transformed world (scale moves centers only)."""
        c2w = np.asarray(c2w, dtype=np.float64)
        out = c2w.copy()
        out[..., :3, :3] = self.rotation @ c2w[..., :3, :3]
        out[..., :3, 3] = self.scale * (c2w[..., :3, 3] @ self.rotation.T) + self.translation
        return out

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix."""
        M = np.eye(4)
        M[:3, :3] = self.scale * self.rotation
        M[:3, 3] = self.translation
        return M

    def inverse(self) -> "Sim3":
        """The inverse transform."""
        Rt = self.rotation.T
        return Sim3(1.0 / self.scale, Rt, -(Rt @ self.translation) / self.scale)

    def compose(self, other: "Sim3") -> "Sim3":
        """``self after other``: x -> self(other(x))."""
        return Sim3(
            self.scale * other.scale,
            self.rotation @ other.rotation,
            self.scale * (self.rotation @ other.translation) + self.translation,
        )


def _pairs(
    src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s = as_float_array(src, "src", np.float64).reshape(-1, 3) if np.asarray(src).shape[-1:] == (3,) else None
    d = as_float_array(dst, "dst", np.float64).reshape(-1, 3) if np.asarray(dst).shape[-1:] == (3,) else None
    if s is None or d is None or s.shape != d.shape:
        raise One4DInputError(
            f"src and dst must be corresponding points [..., 3] of the same shape, got {np.shape(src)} and {np.shape(dst)}."
        )
    w = np.ones(len(s)) if weights is None else as_float_array(weights, "weights", np.float64).reshape(-1)
    if w.shape[0] != s.shape[0]:
        raise One4DInputError(f"weights has {w.shape[0]} entries for {s.shape[0]} point pairs; pass one weight per pair.")
    keep = np.isfinite(s).all(1) & np.isfinite(d).all(1) & np.isfinite(w) & (w > 0)
    if keep.sum() < 3:
        raise One4DInputError("Sim(3) alignment needs at least 3 finite corresponding point pairs with positive weight.")
    return s[keep], d[keep], w[keep], keep


def _umeyama(s: np.ndarray, d: np.ndarray, w: np.ndarray, with_scale: bool) -> Sim3:
    wn = w / w.sum()
    mu_s, mu_d = wn @ s, wn @ d
    sc, dc = s - mu_s, d - mu_d
    var_s = float(wn @ (sc * sc).sum(1))
    if var_s <= 1e-24 * max(1.0, float(np.abs(mu_s).max())) ** 2:
        raise One4DInputError("Sim(3) alignment: the source points have zero extent (all at one place); nothing to align.")
    cov = (dc * wn[:, None]).T @ sc
    U, S, Vt = np.linalg.svd(cov)
    E = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        E[2] = -1.0
    R = (U * E) @ Vt
    c = float((S * E).sum() / var_s) if with_scale else 1.0
    return Sim3(c, R, mu_d - c * (R @ mu_s))


def umeyama(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None, with_scale: bool = True) -> Sim3:
    """Least-squares Sim(3) (or SE(3) with ``with_scale=False``) mapping ``src`` onto ``dst`` (``[..., 3]``)."""
    s, d, w, _ = _pairs(src, dst, weights)
    return _umeyama(s, d, w, with_scale)


def _least_median_start(s: np.ndarray, d: np.ndarray, with_scale: bool, hypotheses: int, seed: int) -> Sim3 | None:
    """Best of random 3-pair Umeyama fits by the median residual (LMedS), or None if all degenerate."""
    rng = np.random.default_rng(seed)
    n = s.shape[0]
    idx = rng.integers(0, n, size=(hypotheses, 3))
    S, D = s[idx], d[idx]  # [h, 3, 3]
    ms, md = S.mean(1, keepdims=True), D.mean(1, keepdims=True)
    Sc, Dc = S - ms, D - md
    var_s = (Sc * Sc).sum((1, 2)) / 3.0
    cov = np.einsum("hki,hkj->hij", Dc, Sc) / 3.0
    U, sv, Vt = np.linalg.svd(cov)
    E = np.ones((hypotheses, 3))
    E[:, 2] = np.where(np.linalg.det(U) * np.linalg.det(Vt) < 0, -1.0, 1.0)
    R = (U * E[:, None, :]) @ Vt
    ok = var_s > 1e-12 * max(1.0, float(np.abs(s).max())) ** 2
    c = np.where(ok, (sv * E).sum(1) / np.where(ok, var_s, 1.0), 1.0) if with_scale else np.ones(hypotheses)
    ok &= c > 0
    if not ok.any():
        return None
    t = md[:, 0] - c[:, None] * np.einsum("hij,hj->hi", R, ms[:, 0])
    m = min(n, 2000)
    ev = rng.choice(n, m, replace=False) if n > m else np.arange(n)
    pred = c[:, None, None] * np.einsum("hij,mj->hmi", R, s[ev]) + t[:, None]
    med = np.median(np.linalg.norm(pred - d[ev][None], axis=-1), axis=1)
    med[~ok] = np.inf
    b = int(np.argmin(med))
    return Sim3(float(c[b]), R[b], t[b])


def robust_umeyama(
    src: np.ndarray,
    dst: np.ndarray,
    weights: np.ndarray | None = None,
    with_scale: bool = True,
    iters: int = 8,
    cauchy_k: float = 2.5,
    hypotheses: int = 128,
    seed: int = 0,
) -> tuple[Sim3, np.ndarray]:
    """Robust Sim(3): least-median-of-squares start, then IRLS with Cauchy weights.

    The start is the best (smallest median residual) of the plain fit and ``hypotheses`` random
    3-pair fits, so up to about half of the pairs may be wrong. The residual scale is 1.4826 x the
    median residual of the current fit. Returns the transform and the final per-pair weights
    (0 for non-finite pairs).
    """
    s, d, w0, keep = _pairs(src, dst, weights)
    T = _umeyama(s, d, w0, with_scale)
    if s.shape[0] >= 6 and hypotheses > 0:
        start = _least_median_start(s, d, with_scale, hypotheses, seed)
        if start is not None:
            med_plain = np.median(np.linalg.norm(T.apply(s) - d, axis=1))
            if np.median(np.linalg.norm(start.apply(s) - d, axis=1)) < med_plain:
                T = start
    w = w0
    for _ in range(iters):
        r = np.linalg.norm(T.apply(s) - d, axis=1)
        sigma = 1.4826 * float(np.median(r)) + 1e-12 * (1.0 + float(np.abs(d).max()))
        w = w0 / (1.0 + (r / (cauchy_k * sigma)) ** 2)
        T = _umeyama(s, d, w, with_scale)
    full = np.zeros(keep.shape[0])
    full[keep] = w
    return T, full


def symmetric_scale(src: np.ndarray, dst: np.ndarray, T: Sim3, weights: np.ndarray) -> Sim3:
    """``T`` with its scale replaced by the ratio of the weighted spreads of ``dst`` and ``src`` (and the
    translation refitted). Umeyama's least-squares scale shrinks towards 0 when ``src`` is noisy (it
    regresses ``dst`` on ``src``), which compounds along a chain of windows; the spread ratio treats both
    sides alike and is exact on noiseless pairs too."""
    s, d = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    w = np.asarray(weights, np.float64)
    w = w / max(w.sum(), 1e-300)
    ms, md = w @ s, w @ d
    spread_s = float(w @ ((s - ms) ** 2).sum(1))
    spread_d = float(w @ ((d - md) ** 2).sum(1))
    if not spread_s > 0 or not spread_d > 0:
        return T
    c = float(np.sqrt(spread_d / spread_s))
    return Sim3(c, T.rotation, md - c * T.rotation @ ms)

