"""Flying points: pixels at depth discontinuities whose 3D points hang in the air between surfaces.

Decoded pointmaps (a VAE smooths sharp edges) interpolate between foreground and background along
object outlines; lifted to 3D those pixels form streaks that hide the scene in a point cloud viewer.
We detect them on the depth map with local minimum/maximum filters (OpenCV erode/dilate over a
``(2 radius + 1)^2`` window, invalid neighbours ignored):

- ``mode="edge"`` (default): drop every pixel whose window spans a relative depth jump,
  ``max / min - 1 > rel_threshold``. Removes the smeared band and a thin rim on both sides; robust.
- ``mode="between"``: drop only pixels that sit strictly between a much nearer and a much farther
  neighbour (both ``D / min - 1`` and ``max / D - 1`` above the threshold): the interpolated band itself,
  keeping the true silhouette of both surfaces when the band is at most ``radius`` pixels wide.

Defaults (``rel_threshold=0.1``, ``radius=1``) are ours; the paper does not filter. A lower threshold
also catches steep but continuous surfaces (grazing floors) in ``edge`` mode.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import One4DInputError
from ..progress import track
from .inputs import as_float_array, as_mask


def flying_point_mask(
    depth: np.ndarray,
    valid: np.ndarray | None = None,
    rel_threshold: float = 0.1,
    radius: int = 1,
    mode: str = "edge",
) -> np.ndarray:
    """Boolean mask ``[F, H, W]`` (or ``[H, W]``), True where a pixel is a flying point to remove."""
    d = as_float_array(depth, "depth", np.float32)
    single = d.ndim == 2
    if single:
        d = d[None]
    if d.ndim != 3:
        raise One4DInputError(f"depth has shape {tuple(np.shape(depth))}; expected [F, H, W] or [H, W] z-depth.")
    if mode not in ("edge", "between"):
        raise One4DInputError(f"mode={mode!r}; use 'edge' or 'between'.")
    if rel_threshold <= 0 or radius < 1:
        raise One4DInputError("flying_point_mask needs rel_threshold > 0 and radius >= 1.")
    ok = np.isfinite(d) & (d > 0)
    if valid is not None:
        ok &= as_mask(valid[None] if single else valid, d.shape, "valid")
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    out = np.zeros(d.shape, dtype=bool)
    for i in track("flying points", range(d.shape[0])):
        lo = cv2.erode(np.where(ok[i], d[i], np.inf).astype(np.float32), kernel, borderType=cv2.BORDER_REPLICATE)
        hi = cv2.dilate(np.where(ok[i], d[i], 0.0).astype(np.float32), kernel, borderType=cv2.BORDER_REPLICATE)
        di = np.where(ok[i], d[i], 1.0)
        if mode == "edge":
            flag = hi > (1.0 + rel_threshold) * lo
        else:
            flag = (di > (1.0 + rel_threshold) * lo) & (hi > (1.0 + rel_threshold) * di)
        out[i] = flag & ok[i]
    return out[0] if single else out


def remove_flying_points(estimate, rel_threshold: float = 0.1, radius: int = 1, mode: str = "edge"):
    """Return a copy of a :class:`CameraEstimate` whose ``valid`` mask (and depth) excludes flying points."""
    from dataclasses import replace

    flying = flying_point_mask(estimate.depth, estimate.valid, rel_threshold, radius, mode)
    valid = estimate.valid & ~flying
    depth = np.where(valid, estimate.depth, 0.0).astype(np.float32)
    stats = dict(estimate.stats)
    stats["flying_removed"] = int(flying.sum())
    return replace(estimate, valid=valid, depth=depth, stats=stats)
