"""Cameras and depth from a pointmap video (the paper's section 3.4).

Model: frame i has intrinsics ``K_i`` (one focal ``f_i``, principal point at the image center),
camera-to-world rotation ``R_i`` and center ``o_i``; pixel (u, v) with z-depth ``D`` lifts to
``X = R_i (D K_i^-1 [u, v, 1]) + o_i`` (our ``R_i`` is the paper's ``R_i^T``). The paper fits these to
the pointmap ``P`` with ``a1 * sum |X - P|_1 + a2 * sum_i (||R_i^T R_{i+1} - I||_F + ||o_{i+1} - o_i||_2)``.

Decisions where the paper is silent (see docs/geometry.md):
- Start: closed-form resection per frame (:mod:`.resection`), not identity cameras; ill-conditioned frames
  (planar views) get their pose by RANSAC PnP with the shared focal; if that fails, the nearest
  well-conditioned frame's camera.
- Depth is not a free parameter: for given cameras the depth of each pixel is eliminated in closed form as
  the point of its ray nearest to ``P`` (``D = <P - o, r> / <r, r>``), so the optimizer only sees
  7 (or 6 + shared focal) numbers per frame; the remaining L1 term is the point-to-ray offset. The final
  depth of every pixel uses the same formula.
- Weights: ``a1 = 1`` on the per-frame mean L1 residual, ``a2 = smooth_weight = 0.01``; both terms are
  measured in units of the clip's robust extent (median distance to the median point), so the weights do
  not depend on the scene scale. L1 terms have a kink at zero residual, so a smoothness weight below the
  data term's slope biases nothing on clean data; the norms are smoothed with eps = 1e-6.
- Optimizer: Adam, ``iters = 100`` steps, learning rate 1e-3 (radians / extent units / log focal) with a
  cosine decay to 1% of it; rotations are updated as ``expm(skew(w)) @ R_start``.
- Refinement runs on a regular pixel subgrid of about ``refine_points`` (4096) pixels per frame; the
  closed form uses the same subgrid.
- Threads: the refinement works on small tensors ([F, ~4096]); on a 2-core machine shared with other
  work, torch's 2-thread OpenMP loops were 10 to 30x slower than one thread (measured 46 s vs 3 s at
  81x352x624), so ``threads=1`` is the default and the caller's setting is restored afterwards.
- Cancel and progress (:mod:`one4d.progress`): the work runs in pieces (16 frames of the closed form,
  64 frames of each refinement step's forward and backward and of the inlier re-estimation, one frame of
  the PnP fallbacks and of the dense depth, one whole-clip statistic of the normalization), with a
  cancellation check before each, so a 1,025-frame clip stops within one piece; the refinement reports
  each step, the closed form and depth their pieces. The
  refinement's gradient is the sum of the pieces' gradients (the objective is a sum over frames plus the
  smoothness term), equal to the whole-clip gradient up to float rounding, and peak memory is one piece's.
- Focal: shared across frames by default (``shared_focal=True``, one log-focal parameter started at the
  median of the per-frame closed-form focals); ``False`` gives a focal per frame (zooming videos).
- Invalid and outlier points: NaN/inf and masked input points are ignored; points behind the camera are
  dropped at every step; a point is an outlier when its relative point-to-ray offset ``|X - P| / D``
  exceeds ``max(outlier_k * 1.4826 * median offset, min_outlier_offset)`` of its frame (re-estimated twice during
  the refinement). The returned ``valid`` mask excludes all of these.
- World gauge: cameras are expressed in the pointmap's world (frame-0 camera by convention); we do not
  re-anchor frame 0 to identity, so cameras, depth and pointmap stay mutually consistent.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import One4DInputError
from ..progress import check_cancelled, chunks, report, track
from .inputs import as_mask, as_pointmap
from .projection import intrinsics_from_focal, principal_point, unproject_depth
from .resection import focal_on_axis, pose_from_focal, resect_frames


_START, _REFINE, _DEPTH = "cameras: closed form", "cameras: refinement", "cameras: depth"  # progress stages
FRAMES_PER_PIECE = 64  # refinement frames between two cancellation checks (0.1-0.2 s a step's piece on a busy CPU)


@dataclass
class CameraEstimate:
    """Recovered cameras and depth, in the pointmap's world (frame-0 camera, OpenCV axes).

    ``K [F,3,3]`` pixels, ``c2w [F,4,4]``, ``depth [F,H,W]`` z-depth (0 where invalid), ``valid [F,H,W]``,
    ``focal [F]`` pixels; ``stats`` holds diagnostics (losses, outlier fraction, timings).
    """

    K: np.ndarray
    c2w: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    focal: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def w2c(self) -> np.ndarray:
        """World-to-camera matrices ``[F, 4, 4]`` (OpenCV)."""
        return np.linalg.inv(self.c2w.astype(np.float64)).astype(np.float32)

    def points(self) -> np.ndarray:
        """World points re-lifted from depth and cameras ``[F, H, W, 3]`` (NaN where not valid)."""
        pts = unproject_depth(self.depth, self.K, self.c2w)
        pts[~self.valid] = np.nan
        return pts


def _skew_expm(w: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``exp([w]_x)`` for axis-angle vectors ``w [F, 3]``."""
    zero = torch.zeros_like(w[:, 0])
    S = torch.stack(
        [zero, -w[:, 2], w[:, 1], w[:, 2], zero, -w[:, 0], -w[:, 1], w[:, 0], zero], dim=-1
    ).reshape(-1, 3, 3)
    return torch.linalg.matrix_exp(S)


def _ray_fit(
    pts: torch.Tensor, a: torch.Tensor, b: torch.Tensor, R: torch.Tensor, o: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form depth per pixel and world offset ``X - P`` for points ``pts [F, 3, M]``.

    ``(a, b) = ((u - cx) / f, (v - cy) / f)`` are the camera-ray slopes (``[F or 1, M]``), ``R [F, 3, 3]``
    camera-to-world, ``o [F, 3]``. Components are kept as separate ``[F, M]`` planes for speed.
    """
    q = R.transpose(1, 2) @ (pts - o[:, :, None])  # points in camera axes, [F, 3, M]
    depth = (q[:, 0] * a + q[:, 1] * b + q[:, 2]) / (a * a + b * b + 1.0)
    off_cam = torch.stack([depth * a - q[:, 0], depth * b - q[:, 1], depth - q[:, 2]], dim=1)
    return depth, R @ off_cam


def _outlier_thresholds(rel_offset: torch.Tensor, mask: torch.Tensor, k: float, floor: float) -> torch.Tensor:
    """Per-frame threshold on the relative offset: max(k * 1.4826 * median, floor)."""
    vals = torch.where(mask, rel_offset, torch.full_like(rel_offset, float("nan")))
    med = torch.nan_to_num(torch.nanmedian(vals, dim=1).values, nan=floor)
    return torch.clamp(k * 1.4826 * med, min=floor)


def _focal_candidates(res: Any, focal0: float, image_size: int) -> list[float]:
    """Start focals to choose from: the median of well-conditioned frames alone when they are at least half
    of the clip; otherwise also frame 0's direct fit and the median of every plausible closed-form focal
    (noisy pointmaps can leave few or no frames well-conditioned)."""
    out = [float(np.median(res.focal[res.ok]))] if res.ok.any() else []
    if 2 * int(res.ok.sum()) >= len(res.ok):
        return out
    plausible = np.isfinite(res.focal) & (res.focal > 0.02 * image_size) & (res.focal < 100.0 * image_size)
    if np.isfinite(focal0) and 0.02 * image_size < focal0 < 100.0 * image_size:
        out.append(float(focal0))
    if plausible.any():
        out.append(float(np.median(res.focal[plausible])))
    return out


def _reprojection_error(points: np.ndarray, x: np.ndarray, y: np.ndarray, focal: float) -> float:
    """Median reprojection error (pixels) of one frame's points after PnP with a given focal; inf if none."""
    pose = pose_from_focal(points, x, y, focal)
    if pose is None or not (np.isfinite(pose[0]).all() and np.isfinite(pose[1]).all()):
        return float("inf")
    q = (points - pose[1]) @ pose[0]  # camera axes (pose[0] is camera-to-world)
    front = q[:, 2] > 1e-12
    err = np.full(len(q), np.inf)
    err[front] = np.hypot(focal * q[front, 0] / q[front, 2] - x[front], focal * q[front, 1] / q[front, 2] - y[front])
    return float(np.median(err))


def _choose_focal(candidates: list[float], subn: np.ndarray, x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> float:
    """The candidate focal with the smallest median, over up to five evenly spaced frames, of the
    per-frame reprojection error after PnP (a median: PnP itself can fail on one frame); candidates
    within 2% of each other need no test."""
    if not candidates:
        raise One4DInputError(
            "points is degenerate (no frame defines a camera and frame 0 gives no focal); "
            "check that the pointmap is a lifted depth map in the frame-0 camera."
        )
    if max(candidates) <= 1.02 * min(candidates):
        return candidates[0]
    frames = np.unique(np.linspace(0, len(subn) - 1, 5).round().astype(int))
    scores = [np.median([_reprojection_error(subn[i][valid[i]], x[valid[i]], y[valid[i]], f) for i in frames]) for f in candidates]
    return candidates[int(np.argmin(scores))]


def _sample_grid(height: int, width: int, target: int) -> tuple[slice, slice]:
    """Centered regular subgrid with about ``target`` pixels."""
    stride = max(1, int(math.ceil(math.sqrt(height * width / max(target, 1)))))
    off_v = (height - 1 - ((height - 1) // stride) * stride) // 2
    off_u = (width - 1 - ((width - 1) // stride) * stride) // 2
    return slice(off_v, height, stride), slice(off_u, width, stride)


def recover_cameras(
    points: np.ndarray,
    valid: np.ndarray | None = None,
    shared_focal: bool = True,
    iters: int = 100,
    smooth_weight: float = 0.01,
    lr: float = 1e-3,
    refine_points: int = 4096,
    outlier_k: float = 4.0,
    min_outlier_offset: float = 0.01,
    min_depth: float = 1e-6,
    threads: int | None = 1,
) -> CameraEstimate:
    """Recover per-frame K, camera-to-world pose and depth from a pointmap video ``[F, H, W, 3]``.

    Closed-form resection per frame, then the paper's L1 lifted-point + smoothness refinement in torch
    (``iters`` Adam steps; 0 keeps the closed form). ``valid [F, H, W]`` masks pixels to ignore.
    ``threads``: torch intra-op threads while it runs (restored afterwards; None keeps torch's setting).
    Raises :class:`One4DInputError` for unusable pointmaps (wrong shape, all NaN, zero extent).
    """
    args = (points, valid, shared_focal, iters, smooth_weight, lr, refine_points, outlier_k, min_outlier_offset, min_depth)
    if threads is None:
        with torch.inference_mode(False), torch.enable_grad():  # the refinement needs autograd, even under
            return _recover(*args)  # a caller's inference_mode (ComfyUI runs nodes in it)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise One4DInputError(f"threads={threads!r}; pass a positive thread count or None.")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            return _recover(*args)
    finally:
        torch.set_num_threads(previous)


@dataclass
class _Grid:
    """The sampled pixel subgrid of a clip: points, validity, normalized points and pixel coordinates."""

    sub: np.ndarray  # [F, M, 3] float64
    valid: np.ndarray  # [F, M] bool
    normalized: np.ndarray  # [F, M, 3]: (sub - center) / scale, 0 where invalid
    center: np.ndarray  # [3]
    scale: float
    x: np.ndarray  # [M] pixel offsets from the principal point
    y: np.ndarray


@dataclass
class _Start:
    """The closed-form cameras the refinement starts from."""

    rotation: np.ndarray  # [F, 3, 3]
    center: np.ndarray  # [F, 3], normalized units
    focal: np.ndarray  # [1] (shared) or [F]
    resection: Any
    focal_frame0: float
    seconds: float


@dataclass
class _Refined:
    """The refined cameras (original units), the outlier thresholds and the loss before and after."""

    rotation: np.ndarray  # [F, 3, 3] float64
    center: np.ndarray  # [F, 3] float64
    focal: np.ndarray  # [F] float64
    thresholds: torch.Tensor  # [F] relative offset thresholds
    loss_start: float
    data_final: float
    smooth_final: float
    seconds: float


def _check_inputs(points: np.ndarray, valid: np.ndarray | None, iters: int, smooth_weight: float, lr: float,
                  refine_points: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The pointmap and mask as arrays, with the option ranges checked."""
    P = as_pointmap(points, "points")
    F, H, W, _ = P.shape
    if valid is not None:
        valid = as_mask(valid, (F, H, W), "valid")
    if iters < 0 or smooth_weight < 0 or lr <= 0 or refine_points < 16:
        raise One4DInputError("recover_cameras needs iters >= 0, smooth_weight >= 0, lr > 0 and refine_points >= 16.")
    if H < 4 or W < 4:
        raise One4DInputError(f"points has a {H}x{W} image; recover_cameras needs at least 4x4 pixels.")
    return P, valid


def _sample_normalized(P: np.ndarray, valid: np.ndarray | None, refine_points: int) -> _Grid:
    """Sample the subgrid and normalize it by its robust center and extent (errors for unusable pointmaps)."""
    F, H, W, _ = P.shape
    sv, su = _sample_grid(H, W, refine_points)
    sub = P[:, sv, su].reshape(F, -1, 3).astype(np.float64)
    sub_valid = np.isfinite(sub).all(-1)
    if valid is not None:
        sub_valid &= valid[:, sv, su].reshape(F, -1)
    if not sub_valid.any():
        raise One4DInputError(
            "points has no finite valid point (all NaN/inf or masked out); check the decoded pointmap and the valid mask."
        )
    empty = np.flatnonzero(sub_valid.sum(1) < 12)
    if empty.size:
        raise One4DInputError(
            f"points frame(s) {empty[:10].tolist()} have fewer than 12 finite valid points on the sampling grid; "
            "drop those frames or fix their pointmap before recovering cameras."
        )
    good = sub[sub_valid]
    check_cancelled(_START)  # each whole-clip statistic below takes up to ~0.4 s at 1,025 frames on a busy CPU
    center = np.median(good, axis=0)
    check_cancelled(_START)
    dist = np.linalg.norm(good - center, axis=-1)
    check_cancelled(_START)
    scale = float(np.median(dist))
    check_cancelled(_START)
    extent = float(np.ptp(good, axis=0).max())
    if not np.isfinite(scale) or scale <= 1e-12 * max(1.0, float(np.abs(center).max())) or extent <= 0:
        raise One4DInputError(
            "points has zero extent (all points at the same place); a pointmap needs depth variation to define cameras."
        )
    subn = np.where(sub_valid[..., None], (sub - center) / scale, 0.0)
    v_idx, u_idx = np.mgrid[sv, su]
    cx, cy = principal_point(H, W)
    x = (u_idx.ravel() - cx).astype(np.float64)
    y = (v_idx.ravel() - cy).astype(np.float64)
    return _Grid(sub, sub_valid, subn, center, scale, x, y)


def _closed_form(grid: _Grid, shared_focal: bool, image_size: int, t0: float) -> _Start:
    """Per-frame resection; ill-conditioned frames get PnP with the shared focal, else a neighbour's camera."""
    subn, sub_valid, x, y = grid.normalized, grid.valid, grid.x, grid.y
    res = resect_frames(subn, x, y, sub_valid, image_size)
    focal0, _ = focal_on_axis(grid.sub[0][sub_valid[0]], x[sub_valid[0]], y[sub_valid[0]])
    ok = res.ok
    f_shared = _choose_focal(_focal_candidates(res, focal0, image_size), subn, x, y, sub_valid)
    R0, o0 = res.rotation.copy(), res.center.copy()
    f_frames = np.where(ok, res.focal, f_shared)
    for i in np.flatnonzero(~ok):  # planar / degenerate frames: PnP with the known focal
        check_cancelled(_START)
        m = sub_valid[i]
        pose = pose_from_focal(subn[i][m], x[m], y[m], f_shared)
        if pose is not None and np.isfinite(pose[0]).all() and np.isfinite(pose[1]).all():
            R0[i], o0[i] = pose
        elif ok.any():
            j = np.flatnonzero(ok)[np.abs(np.flatnonzero(ok) - i).argmin()]
            R0[i], o0[i] = res.rotation[j], res.center[j]
        else:
            R0[i], o0[i] = np.eye(3), -grid.center / grid.scale
    f_init = np.full(1, f_shared) if shared_focal else f_frames
    return _Start(R0, o0, f_init, res, float(focal0), time.perf_counter() - t0)


class _Objective:
    """The paper's L1 lifted-point + smoothness objective over the refined parameters (rotation updates ``w``,
    centers ``o``, log focal), evaluated piece by piece over frames (module docstring)."""

    def __init__(self, grid: _Grid, start: _Start, min_depth: float):
        F = grid.normalized.shape[0]
        dtype = torch.float32
        self.pts = torch.from_numpy(np.ascontiguousarray(grid.normalized.transpose(0, 2, 1))).to(dtype)  # [F, 3, M]
        self.mask = torch.from_numpy(grid.valid)
        self.x = torch.from_numpy(grid.x).to(dtype)[None]
        self.y = torch.from_numpy(grid.y).to(dtype)[None]
        self.R_start = torch.from_numpy(start.rotation).to(dtype)
        self.w = torch.zeros(F, 3, dtype=dtype, requires_grad=True)
        self.o = torch.from_numpy(start.center).to(dtype).clone().requires_grad_(True)
        self.logf = torch.from_numpy(np.log(start.focal)).to(dtype).clone().requires_grad_(True)
        self.min_d = min_depth / grid.scale
        self.pieces = chunks(F, FRAMES_PER_PIECE)

    @property
    def params(self) -> list[torch.Tensor]:
        """What Adam updates: rotation updates, centers and log focal."""
        return [self.w, self.o, self.logf]

    def rotations(self, s: slice = slice(None)) -> torch.Tensor:
        """Camera-to-world rotations of the frames ``s``."""
        return _skew_expm(self.w[s]) @ self.R_start[s]

    def data(self, inliers: torch.Tensor, s: slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Summed per-frame mean L1 offset of the frames ``s``, with their depth and offsets."""
        logf = self.logf if self.logf.numel() == 1 else self.logf[s]
        f = torch.exp(logf)[:, None]
        depth, off = _ray_fit(self.pts[s], self.x / f, self.y / f, self.rotations(s), self.o[s])
        use = inliers[s] & (depth.detach() > self.min_d)
        return ((off.abs().sum(1) * use).sum(1) / use.sum(1).clamp(min=1)).sum(), depth, off

    def smooth(self) -> torch.Tensor:
        """Smoothness of the camera path (``||R_i^T R_{i+1} - I||_F == ||R_{i+1} - R_i||_F``)."""
        R = self.rotations()
        dR, do = R[1:] - R[:-1], self.o[1:] - self.o[:-1]
        eps = 1e-6
        return torch.sqrt((dR * dR).sum((1, 2)) + eps**2).sum() + torch.sqrt((do * do).sum(-1) + eps**2).sum()

    def loss(self, inliers: torch.Tensor) -> tuple[float, float]:
        """The data and smoothness terms (no gradient)."""
        with torch.no_grad():
            total = 0.0
            for s in self.pieces:
                check_cancelled(_REFINE)
                total += float(self.data(inliers, s)[0])
            return total, float(self.smooth())

    def backward(self, inliers: torch.Tensor, smooth_weight: float) -> None:
        """Accumulate the objective's gradient piece by piece into the parameters' ``.grad``."""
        for s in self.pieces:
            check_cancelled(_REFINE)
            self.data(inliers, s)[0].backward()
        (smooth_weight * self.smooth()).backward()

    def refresh_inliers(self, outlier_k: float, floor: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Points in front of their camera whose relative offset is within their frame's threshold, and the
        thresholds ``[F]``."""
        inliers, thresholds = [], []
        with torch.no_grad():
            for s in self.pieces:
                check_cancelled(_REFINE)
                _, depth, off = self.data(self.mask, s)
                front = self.mask[s] & (depth > self.min_d)
                rel = off.norm(dim=1) / depth.clamp(min=1e-12)
                thr = _outlier_thresholds(rel, front, outlier_k, floor)
                inliers.append(front & (rel <= thr[:, None]))
                thresholds.append(thr)
        return torch.cat(inliers), torch.cat(thresholds)


def _refine(grid: _Grid, start: _Start, iters: int, smooth_weight: float, lr: float, outlier_k: float,
            min_outlier_offset: float, min_depth: float) -> _Refined:
    """The paper's L1 lifted-point + smoothness objective, minimized with Adam (module docstring)."""
    t0 = time.perf_counter()
    F = grid.normalized.shape[0]
    obj = _Objective(grid, start, min_depth)
    inliers, thr = obj.refresh_inliers(outlier_k, min_outlier_offset)
    d0, s0 = obj.loss(inliers)
    loss_start = d0 + smooth_weight * s0
    if iters > 0:
        _adam_steps(obj, inliers, iters, smooth_weight, lr, outlier_k, min_outlier_offset)
        inliers, thr = obj.refresh_inliers(outlier_k, min_outlier_offset)
    d1, s1 = obj.loss(inliers)
    with torch.no_grad():
        R_np = obj.rotations().double().numpy()
        focal = torch.exp(obj.logf).double().numpy() * np.ones(F)
    o_np = obj.o.detach().double().numpy() * grid.scale + grid.center
    return _Refined(R_np, o_np, focal, thr, loss_start, d1, s1, time.perf_counter() - t0)


def _adam_steps(obj: _Objective, inliers: torch.Tensor, iters: int, smooth_weight: float, lr: float, outlier_k: float,
                min_outlier_offset: float) -> None:
    """Minimize data + smooth_weight * smoothness in place: Adam with a cosine decay to 1% of ``lr``, the
    inliers re-estimated after a third and two thirds of the steps; each step is reported."""
    opt = torch.optim.Adam(obj.params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(i, iters) / iters))
    )
    checkpoints = {iters // 3, (2 * iters) // 3} - {0}
    for it in range(iters):
        if it in checkpoints:
            inliers, _ = obj.refresh_inliers(outlier_k, min_outlier_offset)
        opt.zero_grad(set_to_none=True)
        obj.backward(inliers, smooth_weight)
        opt.step()
        sched.step()
        report(_REFINE, it + 1, iters)


def _dense_depth(P: np.ndarray, valid: np.ndarray | None, cams: _Refined, min_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth and validity of every pixel in closed form (original units, rotation-invariant offset test)."""
    F, H, W, _ = P.shape
    dtype = torch.float32
    cx, cy = principal_point(H, W)
    depth_full = np.zeros((F, H, W), dtype=np.float32)
    valid_full = np.zeros((F, H, W), dtype=bool)
    u_all = torch.arange(W, dtype=dtype) - cx
    v_all = torch.arange(H, dtype=dtype) - cy
    thr2 = (cams.thresholds.double().numpy() ** 2).astype(np.float32)
    any_bad = valid is not None or not bool(np.isfinite(P).all())
    with torch.no_grad():
        for i in track(_DEPTH, range(F)):
            a = (u_all / float(cams.focal[i]))[None, :].expand(H, W).reshape(-1)
            b = (v_all / float(cams.focal[i]))[:, None].expand(H, W).reshape(-1)
            Pi = torch.from_numpy(P[i].reshape(-1, 3))
            if any_bad:
                fin = torch.isfinite(Pi).all(-1)
                if valid is not None:
                    fin &= torch.from_numpy(valid[i].reshape(-1))
                Pi = torch.where(fin[:, None], Pi, torch.zeros((), dtype=Pi.dtype))
            q = (Pi.to(dtype) - torch.from_numpy(cams.center[i]).to(dtype)) @ torch.from_numpy(cams.rotation[i]).to(dtype)
            d = (q[:, 0] * a + q[:, 1] * b + q[:, 2]) / (a * a + b * b + 1.0)
            off2 = (d * a - q[:, 0]).square_() + (d * b - q[:, 1]).square_() + (d - q[:, 2]).square_()
            ok_i = (d > min_depth) & (off2 <= float(thr2[i]) * d * d)
            if any_bad:
                ok_i &= fin
            depth_full[i] = torch.where(ok_i, d, torch.zeros((), dtype=dtype)).reshape(H, W).numpy()
            valid_full[i] = ok_i.reshape(H, W).numpy()
    return depth_full, valid_full


def _recover(
    points: np.ndarray,
    valid: np.ndarray | None,
    shared_focal: bool,
    iters: int,
    smooth_weight: float,
    lr: float,
    refine_points: int,
    outlier_k: float,
    min_outlier_offset: float,
    min_depth: float,
) -> CameraEstimate:
    """Check, sample and normalize, closed form, refinement, dense depth; see :func:`recover_cameras`."""
    t0 = time.perf_counter()
    P, valid = _check_inputs(points, valid, iters, smooth_weight, lr, refine_points)
    F, H, W, _ = P.shape
    grid = _sample_normalized(P, valid, refine_points)
    start = _closed_form(grid, shared_focal, max(H, W), t0)
    cams = _refine(grid, start, iters, smooth_weight, lr, outlier_k, min_outlier_offset, min_depth)
    depth_full, valid_full = _dense_depth(P, valid, cams, min_depth)
    c2w = np.tile(np.eye(4), (F, 1, 1))
    c2w[:, :3, :3] = cams.rotation
    c2w[:, :3, 3] = cams.center
    res = start.resection
    stats = {
        "loss_start": cams.loss_start,
        "loss_final": float(cams.data_final + smooth_weight * cams.smooth_final),
        "data_final": cams.data_final,
        "smooth_final": cams.smooth_final,
        "iters": iters,
        "closed_form_ok_frames": int(res.ok.sum()),
        "closed_form_focal": res.focal.astype(np.float32),
        "closed_form_residual_px": res.residual_px.astype(np.float32),
        "focal_frame0_direct": start.focal_frame0,
        "outlier_fraction": float(1.0 - valid_full.sum() / max(1, np.isfinite(P).all(-1).sum())),
        "normalization": {"center": grid.center.tolist(), "scale": grid.scale},
        "seconds_closed_form": start.seconds,
        "seconds_refine": cams.seconds,
        "seconds_total": time.perf_counter() - t0,
    }
    return CameraEstimate(
        K=intrinsics_from_focal(cams.focal, H, W),
        c2w=c2w.astype(np.float32),
        depth=depth_full,
        valid=valid_full,
        focal=cams.focal.astype(np.float32),
        stats=stats,
    )
