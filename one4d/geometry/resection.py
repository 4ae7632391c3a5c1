"""Closed-form camera start: focal, rotation and center of every frame from its pointmap alone.

A pointmap frame gives dense 2D-3D pairs (pixel -> world point), so each frame's camera is a camera
resection problem. With the principal point fixed at the image center the projection matrix is
``P ~ [f r1 | f t1; f r2 | f t2; r3 | t3]``; we solve it linearly (a DLT with Hartley normalization,
12 unknowns, batched over frames as 12x12 eigenproblems), robustified by iteratively reweighted least
squares: Cauchy weights on the pixel reprojection error and a 1/z^2 factor that turns the algebraic
error into the geometric one. The reweighting starts from the better of the plain fit and a least
median of squares pick among random 6-point fits, so gross outliers (10-30% of the points) do not
capture the start. Focal = geometric mean of the two row norms, rotation = nearest proper
rotation (SVD), center = -R^T t.

A frame is flagged ill-conditioned when the DLT null space is not one-dimensional (planar or nearly
planar scene, too few points: the second-smallest eigenvalue is below 5x the smallest or numerically
zero) or the focal is implausible; the caller then solves its pose with the known focal by PnP
(:func:`pose_from_focal`), which planes do not trouble. :func:`focal_on_axis` fits focal and axial
offset for frame 0, whose camera looks down +z from a point on the z axis (world = frame-0 camera, up to
the normalization's shift along z); it is one of the start focals the caller chooses from.

Every frame's solution depends on that frame alone, so :func:`resect_frames` works in pieces of
``FRAMES_PER_PIECE`` frames with a cancellation check before each (:mod:`one4d.progress`); the random
6-point samples come from one generator in frame order, so the pieces give the same cameras as one batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..progress import chunks, track
from .projection import nearest_rotation

FRAMES_PER_PIECE = 16  # frames solved between two cancellation checks (about 0.5 s on a busy 2-core CPU)


@dataclass
class Resection:
    """Per-frame closed-form cameras: focal ``[F]``, c2w rotation ``[F,3,3]``, center ``[F,3]``, ``ok [F]``."""

    focal: np.ndarray
    rotation: np.ndarray
    center: np.ndarray
    ok: np.ndarray
    residual_px: np.ndarray


def focal_on_axis(
    points: np.ndarray, x: np.ndarray, y: np.ndarray, hypotheses: int = 128, iters: int = 8, seed: int = 0
) -> tuple[float, float]:
    """Robust focal (pixels) and axial offset ``t`` of a camera looking down +z from ``(0, 0, -t)``.

    Frame 0 of a pointmap in this project's conventions is such a view: world = frame-0 camera, and the
    normalization of :mod:`one4d.pointmap` only scales and shifts along z. Two points fix ``(f, t)``
    through their radii (``r (Z + t) = f rho``); the best of ``hypotheses`` random pairs by median
    reprojection error starts an iteratively reweighted least-squares fit of ``f X - t x = x Z`` and
    ``f Y - t y = y Z``, weighted by ``1 / (Z + t)^2`` (pixel units) and a Cauchy weight, as in
    :func:`resect_frames`. Returns ``(nan, nan)`` when no positive focal fits.
    """
    ok = np.isfinite(points).all(axis=-1)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), float("nan")
    X, Y, Z = (points[ok, i].astype(np.float64) for i in range(3))
    xs, ys = x[ok].astype(np.float64), y[ok].astype(np.float64)

    def pixel_errors(f: float, t: float) -> np.ndarray:
        d = Z + t
        front = d > 1e-12
        safe = np.where(front, d, 1.0)
        return np.where(front, np.hypot(f * X / safe - xs, f * Y / safe - ys), np.inf)

    rho, r = np.hypot(X, Y), np.hypot(xs, ys)
    i, j = np.random.default_rng(seed).integers(0, n, (2, hypotheses))
    with np.errstate(divide="ignore", invalid="ignore"):
        f_h = r[i] * r[j] * (Z[j] - Z[i]) / (r[i] * rho[j] - rho[i] * r[j])
        t_h = (f_h * rho[i] - r[i] * Z[i]) / r[i]
    usable = np.isfinite(f_h) & np.isfinite(t_h) & (f_h > 0)
    if not usable.any():
        return float("nan"), float("nan")
    scores = [np.median(pixel_errors(f, t)) for f, t in zip(f_h[usable], t_h[usable])]
    best = int(np.argmin(scores))
    f, t, score = float(f_h[usable][best]), float(t_h[usable][best]), float(scores[best])
    A = np.concatenate([np.stack([X, -xs], -1), np.stack([Y, -ys], -1)])
    b = np.concatenate([xs * Z, ys * Z])
    for _ in range(iters):
        err = pixel_errors(f, t)
        front = np.isfinite(err)
        sigma = 1.4826 * float(np.median(err[front])) + 1e-12
        w = np.where(front, 1.0 / (1.0 + (err / (2.5 * sigma)) ** 2) / np.where(front, Z + t, 1.0) ** 2, 0.0)
        sw = np.sqrt(np.concatenate([w, w]))[:, None]
        f_new, t_new = np.linalg.lstsq(A * sw, b * sw[:, 0], rcond=None)[0]
        new_score = float(np.median(pixel_errors(f_new, t_new))) if f_new > 0 else float("inf")
        if not new_score <= score:
            break
        f, t, score = float(f_new), float(t_new), new_score
    return f, t


def _masked_median(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-row median of ``values [F, M]`` over ``mask`` (NaN for empty rows)."""
    v = np.where(mask, values, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(v, axis=1)


def _solve(w: np.ndarray, Xh: np.ndarray, xn: np.ndarray, yn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted DLT with the principal point at the origin: ``P [F, 3, 4]`` and the eigenvalues ``[F, 12]``."""
    F = w.shape[0]
    S0 = np.einsum("fm,fmi,fmj->fij", w, Xh, Xh)
    Sx = np.einsum("fm,fmi,fmj->fij", w * xn, Xh, Xh)
    Sy = np.einsum("fm,fmi,fmj->fij", w * yn, Xh, Xh)
    Sxx = np.einsum("fm,fmi,fmj->fij", w * (xn * xn + yn * yn), Xh, Xh)
    A = np.zeros((F, 12, 12))
    A[:, 0:4, 0:4] = S0
    A[:, 4:8, 4:8] = S0
    A[:, 0:4, 8:12] = -Sx
    A[:, 8:12, 0:4] = -Sx
    A[:, 4:8, 8:12] = -Sy
    A[:, 8:12, 4:8] = -Sy
    A[:, 8:12, 8:12] = Sxx
    scale = np.maximum(np.abs(A).max(axis=(1, 2)), 1e-300)
    evals, evecs = np.linalg.eigh(A / scale[:, None, None])
    return evecs[:, :, 0].reshape(F, 3, 4), evals


def _reproject(
    P: np.ndarray, Xh: np.ndarray, xn: np.ndarray, yn: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fix the sign of ``P`` in place (points in front) and return reprojection error, in-front mask, depth."""
    z = np.einsum("fi,fmi->fm", P[:, 2], Xh)
    sign = np.sign(np.nan_to_num(_masked_median(z, valid), nan=1.0))
    sign[sign == 0] = 1.0
    P *= sign[:, None, None]
    z *= sign[:, None]
    front = valid & (z > 1e-12)
    zs = np.where(front, z, 1.0)
    px = np.einsum("fi,fmi->fm", P[:, 0], Xh) / zs
    py = np.einsum("fi,fmi->fm", P[:, 1], Xh) / zs
    return np.hypot(px - xn, py - yn), front, z


def _least_median_start(
    Xh: np.ndarray, xn: np.ndarray, yn: np.ndarray, valid: np.ndarray, hypotheses: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the 6-point DLT (of ``hypotheses`` random ones) with the smallest median error."""
    F, M = valid.shape
    idx = np.zeros((F, hypotheses, 6), dtype=np.int64)
    ev = np.zeros((F, min(M, 400)), dtype=np.int64)
    for f in range(F):
        pool = np.flatnonzero(valid[f])
        if pool.size < 6:
            pool = np.arange(M)
        idx[f] = rng.choice(pool, size=(hypotheses, 6))
        ev[f] = rng.choice(pool, size=ev.shape[1])
    fi = np.arange(F)[:, None, None]
    Xs = Xh[fi, idx].reshape(F * hypotheses, 6, 4)
    ones = np.ones((F * hypotheses, 6))
    P, _ = _solve(ones, Xs, xn[idx].reshape(-1, 6), yn[idx].reshape(-1, 6))
    P = P.reshape(F, hypotheses, 3, 4)
    Xe = Xh[np.arange(F)[:, None], ev]  # [F, E, 4]
    z = np.einsum("fhi,fei->fhe", P[:, :, 2], Xe)
    sign = np.sign(np.median(z, axis=2))
    sign[sign == 0] = 1.0
    P *= sign[..., None, None]
    z *= sign[..., None]
    zs = np.where(z > 1e-12, z, np.nan)
    px = np.einsum("fhi,fei->fhe", P[:, :, 0], Xe) / zs
    py = np.einsum("fhi,fei->fhe", P[:, :, 1], Xe) / zs
    r = np.hypot(px - xn[ev][:, None], py - yn[ev][:, None])
    r = np.where(np.isfinite(r), r, np.inf)
    med = np.median(r, axis=2)
    best = np.argmin(med, axis=1)
    return P[np.arange(F), best], med[np.arange(F), best]


def resect_frames(
    points: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    image_size: int,
    iters: int = 6,
    hypotheses: int = 48,
    seed: int = 0,
) -> Resection:
    """Closed-form camera per frame from sampled pointmap points.

    ``points [F, M, 3]`` world points at pixel offsets ``(x, y) [M]`` from the principal point (the same
    pixel sample for every frame), ``valid [F, M]``. ``image_size`` (max of H, W) bounds plausible focals.
    """
    rng = np.random.default_rng(seed)
    pieces = [_resect_piece(points[s], x, y, valid[s], image_size, iters, hypotheses, rng)
              for s in track("cameras: closed form", chunks(valid.shape[0], FRAMES_PER_PIECE))]
    return Resection(*(np.concatenate([getattr(p, f) for p in pieces]) for f in Resection.__dataclass_fields__))


def _resect_piece(points: np.ndarray, x: np.ndarray, y: np.ndarray, valid: np.ndarray, image_size: int, iters: int,
                  hypotheses: int, rng: np.random.Generator) -> Resection:
    """:func:`resect_frames` for a few frames, drawing the random samples from ``rng``."""
    F, M = valid.shape
    pts = np.where(valid[..., None], points, 0.0).astype(np.float64)
    s2 = float(np.sqrt(np.mean(x * x + y * y))) or 1.0
    xn, yn = x / s2, y / s2

    # Hartley normalization of the 3D points, per frame, with robust (median) center and scale.
    center = np.stack([_masked_median(pts[..., i], valid) for i in range(3)], axis=-1)
    center = np.nan_to_num(center)
    dist = np.linalg.norm(pts - center[:, None], axis=-1)
    s3 = 1.0 / np.maximum(np.nan_to_num(_masked_median(dist, valid), nan=1.0), 1e-12)
    Xh = np.concatenate([(pts - center[:, None]) * s3[:, None, None], np.ones((F, M, 1))], axis=-1)
    Xh *= valid[..., None]

    # Robust start: per frame, the better (smaller median reprojection error) of the plain fit and the
    # best of ``hypotheses`` random 6-point fits (least median of squares).
    P, evals = _solve(valid.astype(np.float64), Xh, xn, yn)
    r, front, z = _reproject(P, Xh, xn, yn, valid)
    med = _masked_median(np.where(front, r, np.inf), valid)
    if hypotheses > 0:
        Ph, med_h = _least_median_start(Xh, xn, yn, valid, hypotheses, rng)
        better = med_h < np.nan_to_num(med, nan=np.inf)
        if better.any():
            P = np.where(better[:, None, None], Ph, P)
            r, front, z = _reproject(P, Xh, xn, yn, valid)
    for _ in range(iters):
        sigma = 1.4826 * np.nan_to_num(_masked_median(r, front), nan=1.0) + 1e-12
        robust = 1.0 / (1.0 + (r / (2.5 * sigma[:, None])) ** 2)
        zs = np.where(front, z, 1.0)
        zmed = np.nan_to_num(_masked_median(zs, front), nan=1.0)
        w = np.where(front, robust * (zmed[:, None] / zs) ** 2, 0.0)
        P, evals = _solve(w, Xh, xn, yn)
        r, front, z = _reproject(P, Xh, xn, yn, valid)

    # Undo the normalizations: P_orig = diag(s2, s2, 1) P T3.
    T = np.zeros((F, 4, 4))
    T[:, :3, :3] = s3[:, None, None] * np.eye(3)
    T[:, :3, 3] = -s3[:, None] * center
    T[:, 3, 3] = 1.0
    P = np.einsum("ij,fjk,fkl->fil", np.diag([s2, s2, 1.0]), P, T)
    # Degenerate solutions (planar scenes: a multi-dimensional null space) can have a near-zero third
    # row; they are replaced by a harmless placeholder and flagged below.
    norm3 = np.linalg.norm(P[:, 2, :3], axis=-1)
    sane = np.isfinite(P).all(axis=(1, 2)) & (norm3 > 1e-9 * np.abs(P).max(axis=(1, 2)).clip(min=1e-300))
    P = np.where(sane[:, None, None], P / np.where(sane, norm3, 1.0)[:, None, None], np.eye(3, 4))
    fx = np.linalg.norm(P[:, 0, :3], axis=-1)
    fy = np.linalg.norm(P[:, 1, :3], axis=-1)
    sane &= (fx > 1e-12) & (fy > 1e-12)
    fx, fy = np.where(sane, fx, 1.0), np.where(sane, fy, 1.0)
    focal = np.sqrt(fx * fy)
    R_w2c = nearest_rotation(np.stack([P[:, 0, :3] / fx[:, None], P[:, 1, :3] / fy[:, None], P[:, 2, :3]], axis=1))
    t = np.stack([P[:, 0, 3] / fx, P[:, 1, 3] / fy, P[:, 2, 3]], axis=-1)
    cam_center = -np.einsum("fji,fj->fi", R_w2c, t)

    counts = valid.sum(axis=1)
    # One-dimensional null space: the second-smallest eigenvalue clearly above the smallest, and not
    # itself numerically zero (noiseless planar scenes have four zero eigenvalues in any order).
    conditioned = (evals[:, 1] > 5.0 * np.maximum(evals[:, 0], 1e-15)) & (evals[:, 1] > 1e-9 * evals[:, -1])
    plausible = np.isfinite(focal) & (focal > 0.02 * image_size) & (focal < 100.0 * image_size)
    ok = sane & conditioned & plausible & (counts >= 12) & np.isfinite(cam_center).all(axis=-1)
    residual_px = np.nan_to_num(_masked_median(r, valid), nan=np.inf) * s2
    return Resection(
        focal=focal, rotation=np.transpose(R_w2c, (0, 2, 1)), center=cam_center, ok=ok, residual_px=residual_px
    )


def pose_from_focal(points: np.ndarray, x: np.ndarray, y: np.ndarray, focal: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Camera-to-world rotation and center of one frame with a known focal (OpenCV PnP).

    The fallback for frames the linear resection cannot handle (planar views): PnP with known
    intrinsics is well posed for planes. EPnP inside RANSAC can still pick a bad sample on a plane, so
    SQPnP on all points is tried too and the pose with the smaller median reprojection error wins.
    ``points [N, 3]`` finite world points at pixel offsets ``(x, y)``. Returns None when OpenCV finds no pose.
    """
    import cv2

    if points.shape[0] < 6 or not np.isfinite(focal) or focal <= 0:
        return None
    K = np.array([[focal, 0.0, 0.0], [0.0, focal, 0.0], [0.0, 0.0, 1.0]])
    img = np.stack([x, y], axis=-1).astype(np.float64)
    spread = float(np.sqrt(np.mean(x * x + y * y))) or 1.0
    obj = points.astype(np.float64)
    best, best_err = None, np.inf
    cv2.setRNGSeed(0)  # RANSAC draws from OpenCV's global generator: make every call repeatable
    for solve in (
        lambda: cv2.solvePnPRansac(obj, img, K, None, iterationsCount=200, reprojectionError=0.02 * spread * 2,
                                   confidence=0.999, flags=cv2.SOLVEPNP_EPNP)[:3],
        lambda: cv2.solvePnP(obj, img, K, None, flags=cv2.SOLVEPNP_SQPNP),  # all points: no unlucky sample
    ):
        try:
            ok, rvec, tvec = solve()
        except cv2.error:
            continue
        if not ok:
            continue
        proj = cv2.projectPoints(obj, rvec, tvec, K, None)[0].reshape(-1, 2)
        err = float(np.median(np.linalg.norm(proj - img, axis=-1)))
        if err < best_err:
            best, best_err = (rvec, tvec), err
    if best is None:
        return None
    R_w2c, _ = cv2.Rodrigues(best[0])
    center = -R_w2c.T @ best[1].reshape(3)
    return R_w2c.T, center
