"""Long videos: plan overlapping model windows and stitch their pointmaps into one sequence.

The model produces at most its training length (81 frames) per run, each run's pointmap in its own
frame (the camera of the window's first frame, at the scale its normalization chose). A longer video is
cut into windows that overlap by a few frames; pixel (u, v) of a shared frame is the same surface point
in both windows, so every overlap gives dense 3D-3D correspondences. Each window is brought into the
stitched world by a robust Sim(3) fit (:func:`.align.robust_umeyama`) on those correspondences, against
the already-stitched result (so the chain follows the video). The world is window 0's frame, i.e. the
camera of the video's first frame, as the library's convention asks.

Decisions (the paper does not say how it handles long videos):
- Planner: all windows have exactly ``window`` frames (the model's trained length); consecutive
  windows overlap by at least ``overlap`` frames; the last window is shifted back to end on the last
  frame (its overlap can be larger). A video no longer than ``window`` is a single window.
- Overlap frames are blended with a linear ramp (the older window's weight falls from 1 to 0 across the
  overlap) so there is no seam; where only one window has a valid point, that point is kept.
- Correspondences are subsampled to ``max_pairs`` (deterministic stride) per alignment.
- Scale: the rotation comes from the (robust) Umeyama fit, the scale from the ratio of the weighted
  spreads of both sides (:func:`.align.symmetric_scale`). Umeyama's scale regresses one noisy window on
  the other and comes out too small: on the embedded model's 65-frame held-out clips it shrank each window
  by 4-39% (scales 0.61-1.05 against 0.72-1.19 for the spread ratio), and the shrinkage compounded along
  the chain (windowed depth AbsRel 1.33x the per-window figure on one scene, 1.04x with the spread ratio).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import One4DInputError
from ..progress import track
from .align import Sim3, robust_umeyama, symmetric_scale, umeyama
from .inputs import as_mask, as_pointmap


def plan_windows(num_frames: int, window: int = 81, overlap: int = 16) -> list[tuple[int, int]]:
    """Half-open frame spans ``[(start, stop), ...]`` of overlapping windows covering ``num_frames``."""
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise One4DInputError(f"num_frames={num_frames!r}; a video needs at least one frame.")
    if window < 2:
        raise One4DInputError(f"window={window}; a model window needs at least 2 frames (81 for One4D).")
    if not 1 <= overlap < window:
        raise One4DInputError(
            f"overlap={overlap} with window={window}; overlap must be at least 1 and less than the window "
            "(a few frames, e.g. 8 to 16, give the stitcher enough shared geometry)."
        )
    if num_frames <= window:
        return [(0, int(num_frames))]
    stride = window - overlap
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [(int(s), int(s + window)) for s in starts]


@dataclass
class StitchResult:
    """Stitched points ``[N, H, W, 3]`` (NaN where invalid), ``valid [N, H, W]``, one Sim(3) per window.

    ``transforms[k]`` maps window k's coordinates into the stitched world; ``overlap_error[k]`` is the
    RMS residual of its alignment divided by the overlap's extent (0 for window 0).
    """

    points: np.ndarray
    valid: np.ndarray
    transforms: list[Sim3] = field(default_factory=list)
    overlap_error: list[float] = field(default_factory=list)


def _checked_windows(windows: Sequence[np.ndarray], spans: Sequence[tuple[int, int]],
                     valid: Sequence[np.ndarray | None] | None) -> tuple[list[np.ndarray], list[np.ndarray], tuple[int, int]]:
    """Each window as a pointmap with its mask (finite and valid), checked against its span and the others' size."""
    if len(windows) == 0 or len(windows) != len(spans):
        raise One4DInputError(
            f"stitch_windows got {len(windows)} windows and {len(spans)} spans; pass one (start, stop) span per window."
        )
    if valid is not None and len(valid) != len(windows):
        raise One4DInputError(f"valid has {len(valid)} masks for {len(windows)} windows; pass one per window or None.")
    pts_list, val_list, shape = [], [], None
    for k in range(len(windows)):
        start, stop = int(spans[k][0]), int(spans[k][1])
        w = as_pointmap(windows[k], f"windows[{k}]")
        if stop - start != w.shape[0] or start < 0:
            raise One4DInputError(
                f"windows[{k}] has {w.shape[0]} frames but its span ({start}, {stop}) covers {stop - start}; "
                "spans are half-open (start, stop) frame ranges."
            )
        if shape is None:
            shape = w.shape[1:3]
        elif w.shape[1:3] != shape:
            raise One4DInputError(f"windows[{k}] is {w.shape[1]}x{w.shape[2]} but windows[0] is {shape[0]}x{shape[1]}.")
        m = np.isfinite(w).all(-1)
        if valid is not None and valid[k] is not None:
            m &= as_mask(valid[k], w.shape[:3], f"valid[{k}]")
        if not m.any():
            raise One4DInputError(f"windows[{k}] has no finite valid point; check that window's decoded pointmap.")
        pts_list.append(w)
        val_list.append(m)
    return pts_list, val_list, shape


def _align_window(k: int, span: tuple[int, int], win: np.ndarray, wv: np.ndarray, shared: np.ndarray, out: np.ndarray,
                  out_valid: np.ndarray, robust: bool, max_pairs: int) -> tuple[Sim3, float]:
    """The Sim(3) taking window ``k`` onto the stitched frames it shares, and its relative RMS residual."""
    start, stop = span
    if shared.size == 0:
        raise One4DInputError(
            f"window {k} (frames {start}..{stop - 1}) shares no frame with the windows before it; "
            "plan windows with an overlap (plan_windows(..., overlap>=1))."
        )
    both = wv[shared - start] & out_valid[shared]
    if both.sum() < 3:
        raise One4DInputError(
            f"window {k} has fewer than 3 valid points in common with the stitched frames {shared.tolist()}; "
            "increase the overlap or check the valid masks."
        )
    src = win[shared - start][both]
    dst = out[shared][both]
    if src.shape[0] > max_pairs:
        idx = np.linspace(0, src.shape[0] - 1, max_pairs).astype(np.int64)
        src, dst = src[idx], dst[idx]
    if robust:
        T, wts = robust_umeyama(src, dst, with_scale=True)
    else:
        T, wts = umeyama(src, dst, with_scale=True), np.ones(len(src))
    T = symmetric_scale(src, dst, T, wts)
    r = np.linalg.norm(T.apply(src.astype(np.float64)) - dst, axis=1)
    extent = float(np.median(np.linalg.norm(dst - np.median(dst, axis=0), axis=1))) or 1.0
    return T, float(np.sqrt(np.sum(wts * r * r) / max(np.sum(wts), 1e-12)) / extent)


def _place_window(T: Sim3, span: tuple[int, int], win: np.ndarray, wv: np.ndarray, shared: np.ndarray, out: np.ndarray,
                  out_valid: np.ndarray, covered: np.ndarray, blend: bool) -> None:
    """Write an aligned window into the stitched arrays in place, ramp-blending the frames already covered."""
    start, stop = span
    n_shared = shared.size
    for j in range(start, stop):
        new = T.apply(win[j - start]).astype(np.float32)
        nv = wv[j - start]
        if covered[j] and blend:
            t = int(np.searchsorted(shared, j))
            alpha = (t + 1) / (n_shared + 1)
            both = nv & out_valid[j]
            mixed = np.where(both[..., None], (1 - alpha) * out[j] + alpha * new, np.where(nv[..., None], new, out[j]))
            out[j] = mixed
            out_valid[j] = nv | out_valid[j]
        elif not covered[j]:
            out[j] = np.where(nv[..., None], new, np.nan)
            out_valid[j] = nv
        covered[j] = True


def stitch_windows(
    windows: Sequence[np.ndarray],
    spans: Sequence[tuple[int, int]],
    valid: Sequence[np.ndarray | None] | None = None,
    robust: bool = True,
    max_pairs: int = 200_000,
    blend: bool = True,
) -> StitchResult:
    """Stitch per-window pointmaps ``[F_k, H, W, 3]`` covering ``spans`` into one sequence.

    ``spans`` are the half-open frame ranges from :func:`plan_windows`; each window after the first must
    share at least one frame with the windows before it. ``valid`` optionally gives a mask per window.
    """
    pts_list, val_list, (H, W) = _checked_windows(windows, spans, valid)
    order = sorted(range(len(spans)), key=lambda k: (spans[k][0], spans[k][1]))
    N = max(int(s[1]) for s in spans)
    out = np.full((N, H, W, 3), np.nan, dtype=np.float32)
    out_valid = np.zeros((N, H, W), dtype=bool)
    covered = np.zeros(N, dtype=bool)
    transforms: list[Sim3 | None] = [None] * len(windows)
    errors: list[float] = [0.0] * len(windows)
    for rank, k in enumerate(track("stitching", order)):
        span = (int(spans[k][0]), int(spans[k][1]))
        shared = np.flatnonzero(covered[span[0]:span[1]]) + span[0]
        if rank == 0:
            T = Sim3.identity()
        else:
            T, errors[k] = _align_window(k, span, pts_list[k], val_list[k], shared, out, out_valid, robust, max_pairs)
        transforms[k] = T
        _place_window(T, span, pts_list[k], val_list[k], shared, out, out_valid, covered, blend)
    if not covered.all():
        missing = np.flatnonzero(~covered)
        raise One4DInputError(f"frames {missing[:10].tolist()} are covered by no window; spans must cover 0..{N - 1}.")
    return StitchResult(points=out, valid=out_valid, transforms=list(transforms), overlap_error=errors)
