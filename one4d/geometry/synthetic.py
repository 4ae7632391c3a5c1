"""Analytic pointmap videos with known cameras, for tests and benchmarks of the geometry code.

Each frame is a random smooth depth surface (sums of sinusoids) with a moving foreground box that makes
sharp depth discontinuities, seen by a pinhole camera (principal point at the center) moving along a
named path. Points are the exact lift ``R_c2w (D K^-1 [u, v, 1]) + o`` in the frame-0 camera (OpenCV
axes), so recovered cameras and depth can be compared with ground truth. Optional corruption: Gaussian
noise with a standard deviation of ``noise * depth`` on every coordinate, and a fraction of outlier
pixels replaced by uniform random points in the frame's bounding box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import One4DInputError
from .projection import intrinsics_from_focal, principal_point

PATHS = ("orbit", "dolly", "pan", "handheld")


@dataclass
class SyntheticSequence:
    """Ground truth and pointmaps: points ``[F,H,W,3]``, depth ``[F,H,W]``, K, c2w, colors uint8, focal ``[F]``."""

    points: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    c2w: np.ndarray
    colors: np.ndarray
    focal: np.ndarray
    outlier_mask: np.ndarray


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.zeros(np.shape(angle) + (3, 3))
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    k = 3 - i - j
    R[..., k, k] = 1.0
    R[..., i, i] = c
    R[..., j, j] = c
    sign = -1.0 if axis != 1 else 1.0
    R[..., i, j] = sign * s
    R[..., j, i] = -sign * s
    return R


def camera_path(kind: str, frames: int, seed: int = 0, distance: float = 3.0) -> np.ndarray:
    """Camera-to-world poses ``[F, 4, 4]`` (float64) of a named path, re-gauged so frame 0 is identity."""
    if kind not in PATHS:
        raise One4DInputError(f"path {kind!r} is unknown; use one of {PATHS}.")
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, frames)
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    if kind == "orbit":
        theta = np.radians(40.0) * t + rng.uniform(-0.2, 0.2)
        R = _rot(1, theta)
        target = np.array([0.0, 0.0, distance])
        c2w[:, :3, :3] = R
        c2w[:, :3, 3] = target - R @ target
    elif kind == "dolly":
        c2w[:, :3, :3] = _rot(1, np.radians(6.0) * t) @ _rot(0, np.radians(2.0) * np.sin(3 * t))
        c2w[:, :3, 3] = np.stack([0.15 * np.sin(2 * t), 0.05 * t, 0.3 * distance * t], axis=-1)
    elif kind == "pan":
        c2w[:, :3, :3] = _rot(1, np.radians(30.0) * t) @ _rot(0, np.radians(5.0) * t)
    else:  # handheld: smooth random walk of position and small rotations
        steps = rng.normal(size=(frames, 6))
        kernel = np.ones(5) / 5.0
        smooth = np.stack([np.convolve(steps[:, i], kernel, mode="same") for i in range(6)], axis=-1)
        walk = np.cumsum(smooth, axis=0) / np.sqrt(max(frames, 1))
        ang = np.radians(4.0) * walk[:, :3]
        c2w[:, :3, :3] = _rot(0, ang[:, 0]) @ _rot(1, ang[:, 1]) @ _rot(2, ang[:, 2])
        c2w[:, :3, 3] = 0.1 * distance * walk[:, 3:]
    return np.linalg.inv(c2w[0]) @ c2w


def make_sequence(
    frames: int = 9,
    height: int = 48,
    width: int = 80,
    focal: float = 1.0,
    path: str = "orbit",
    seed: int = 0,
    noise: float = 0.0,
    outliers: float = 0.0,
    zoom: float = 0.0,
    distance: float = 3.0,
) -> SyntheticSequence:
    """Make an analytic pointmap video.

    ``focal`` is in units of the image width (1.0 = 53 degree horizontal field of view); ``zoom`` > 0 makes
    the focal grow linearly by that fraction over the clip (per-frame intrinsics). ``noise`` is relative
    to depth, ``outliers`` is a fraction of pixels.
    """
    if frames < 1 or height < 2 or width < 2:
        raise One4DInputError("make_sequence needs frames >= 1 and an image of at least 2x2 pixels.")
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, frames, dtype=np.float32)
    f = (focal * width * (1.0 + zoom * t)).astype(np.float64)
    K = intrinsics_from_focal(f, height, width)
    c2w = camera_path(path, frames, seed, distance)

    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    un, vn = u / width, v / height
    depth = np.full((frames, height, width), distance, dtype=np.float32)
    for _ in range(4):
        a, b = rng.uniform(0.5, 3.0, size=2)
        phase, speed = rng.uniform(0, 2 * np.pi), rng.uniform(-1.0, 1.0)
        amp = rng.uniform(0.05, 0.15) * distance
        depth += amp * np.sin(2 * np.pi * (a * un + b * vn)[None] + phase + speed * t[:, None, None]).astype(np.float32)
    # Foreground box moving across the image: sharp depth discontinuities.
    x0 = (0.15 + 0.4 * t)[:, None, None]
    box = (un[None] > x0) & (un[None] < x0 + 0.3) & (vn[None] > 0.3) & (vn[None] < 0.75)
    depth = np.where(box, 0.55 * depth, depth).astype(np.float32)

    cx, cy = principal_point(height, width)
    fr = f.astype(np.float32)[:, None, None]
    cam = np.stack([(u[None] - cx) / fr * depth, (v[None] - cy) / fr * depth, depth], axis=-1)
    R = c2w[:, :3, :3].astype(np.float32)
    o = c2w[:, :3, 3].astype(np.float32)
    points = np.einsum("fij,fhwj->fhwi", R, cam, optimize=True) + o[:, None, None, :]
    points = points.astype(np.float32)

    if noise > 0:
        points += (rng.standard_normal(points.shape, dtype=np.float32) * (noise * depth)[..., None]).astype(np.float32)
    outlier_mask = np.zeros(depth.shape, dtype=bool)
    if outliers > 0:
        outlier_mask = rng.random(depth.shape) < outliers
        lo = points.reshape(frames, -1, 3).min(axis=1)
        hi = points.reshape(frames, -1, 3).max(axis=1)
        rand = rng.random(points.shape, dtype=np.float32)
        fake = lo[:, None, None] + rand * (hi - lo)[:, None, None]
        points = np.where(outlier_mask[..., None], fake, points).astype(np.float32)

    colors = np.stack(
        [
            np.broadcast_to(255 * un[None], depth.shape),
            np.broadcast_to(255 * vn[None], depth.shape),
            255 * np.clip((depth - depth.min()) / max(float(np.ptp(depth)), 1e-6), 0, 1),
        ],
        axis=-1,
    ).astype(np.uint8)
    return SyntheticSequence(
        points=points, depth=depth, K=K, c2w=c2w.astype(np.float32), colors=colors, focal=f.astype(np.float32),
        outlier_mask=outlier_mask,
    )
