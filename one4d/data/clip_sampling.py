"""Training clips from real sequences: the right length and size, pointmaps in the first camera's frame.

``sample_clip(sequence, spec, time_stride, size_multiple, rng)`` takes ``spec.frames`` frames ``spec.frame_stride``
apart from a :class:`~one4d.data.clips.ClipSequence` and returns a :class:`TrainingClip`. The caller passes the
VAE's time stride and the size multiple (VAE stride x patch) from its :class:`one4d.backbone.LatentGeometry`
(``time_stride``, ``size_multiple``): this layer never assumes Wan's numbers. Frames must be
``k * time_stride + 1`` (81 = 20 x 4 + 1 for Wan), height and width multiples of the size multiple (352 x 624
as in the paper).

Decisions:

* Start frame: drawn uniformly from every start that fits, with ``rng``; the first frame without one.
* Resize then crop: scale by ``max(H / h, W / w)`` (the image covers the target, aspect kept), round to whole
  pixels, then crop ``H x W`` at the center or at a random offset. RGB uses area filtering when shrinking,
  bilinear when enlarging.
* Intrinsics follow exactly: with OpenCV pixel centers, a resize by ``(sx, sy)`` maps ``u`` to
  ``(u + 0.5) sx - 0.5`` (the mapping OpenCV's resize uses), and a crop at ``(x0, y0)`` subtracts the offset:
  ``K' = A K`` with ``A = [[sx, 0, 0.5 sx - 0.5 - x0], [0, sy, 0.5 sy - 0.5 - y0], [0, 0, 1]]``.
* Depth is resampled bilinearly in inverse depth, which is exact on planes (1 / z is affine in the pixel
  coordinates of a plane). A resampled pixel stays valid only where every source pixel it mixes is valid and
  they agree: the product of the mixed depth and the mixed inverse depth is 1 when they all agree and grows with
  their spread, and a pixel is dropped once it exceeds what an even mix of two depths ``EDGE_RATIO`` (10%) apart
  gives. So no point floats between a foreground edge and the background, and sky never bleeds in.
* Pointmaps: each pixel lifts with the new ``K`` and its camera (``X = c2w_i (z K'^-1 [u, v, 1])``), expressed in
  the first camera of the clip: ``c2w_i`` is replaced by ``inv(c2w_0) c2w_i`` (so ``c2w[0]`` is the identity).
  Points are in metres; invalid pixels hold 0.
* Invalid: depth missing, non-finite or <= 0, sky (per dataset reader), masked, mixed across an edge, or beyond
  ``spec.max_depth`` when given.
* Normalization: :func:`one4d.pointmap.fit_normalization` on the valid points, recorded in the clip;
  ``normalized`` is :func:`one4d.pointmap.normalize` of the points, 0 where invalid.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import One4DInputError
from ..geometry.projection import unproject_depth
from ..pointmap import Normalization, fit_normalization, normalize
from .clips import ClipSequence

CROPS = ("center", "random")
EDGE_RATIO = 1.1
MIX_LIMIT = 1.0 + (EDGE_RATIO + 1.0 / EDGE_RATIO - 2.0) / 4.0  # mixed depth x mixed inverse depth, even mix


@dataclass(frozen=True)
class ClipSpec:
    """What to cut from a sequence: frame count, output size, frame stride, crop kind, optional far limit."""

    frames: int = 81
    height: int = 352
    width: int = 624
    frame_stride: int = 1
    crop: str = "center"
    max_depth: float | None = None


@dataclass
class TrainingClip:
    """One training clip in the library's conventions (module docstring)."""

    rgb: np.ndarray  # [F, H, W, 3] uint8
    depth: np.ndarray  # [F, H, W] float32 z-depth in metres, 0 where invalid
    points: np.ndarray  # [F, H, W, 3] float32 metres in the first camera's frame (OpenCV), 0 where invalid
    normalized: np.ndarray  # [F, H, W, 3] float32 in [-1, 1], 0 where invalid
    valid: np.ndarray  # [F, H, W] bool
    K: np.ndarray  # [F, 3, 3] float32, pixels of the output size
    c2w: np.ndarray  # [F, 4, 4] float32 camera-to-first-camera, c2w[0] = identity
    normalization: Normalization
    caption: str
    source: str
    frames: np.ndarray  # [F] int64: the frame numbers in the sequence


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_spec(spec: ClipSpec, time_stride: int, size_multiple: int) -> None:
    """Raise :class:`One4DInputError` unless ``spec`` fits the VAE: frames ``k * time_stride + 1``, sizes multiples."""
    if not (_is_int(time_stride) and _is_int(size_multiple) and time_stride >= 1 and size_multiple >= 1):
        raise One4DInputError(f"time_stride {time_stride!r} and size_multiple {size_multiple!r} must be positive integers.")
    if not _is_int(spec.frames) or spec.frames < 1 or (spec.frames - 1) % time_stride:
        lower = max(1, (int(spec.frames) - 1) // time_stride * time_stride + 1) if _is_int(spec.frames) else 1
        raise One4DInputError(
            f"frames={spec.frames!r} is not k x {time_stride} + 1 (the VAE's time stride is {time_stride}); "
            f"use frames={lower} or frames={lower + time_stride}."
        )
    for name in ("height", "width"):
        value = getattr(spec, name)
        if not _is_int(value) or value < size_multiple or value % size_multiple:
            lower = max(size_multiple, int(value) // size_multiple * size_multiple) if _is_int(value) else size_multiple
            raise One4DInputError(
                f"{name}={value!r} is not a positive multiple of {size_multiple} (VAE stride x patch); "
                f"use {name}={lower} or {name}={lower + size_multiple}."
            )
    if not _is_int(spec.frame_stride) or spec.frame_stride < 1:
        raise One4DInputError(f"frame_stride={spec.frame_stride!r}; use a positive integer (1 = every frame).")
    if spec.crop not in CROPS:
        raise One4DInputError(f"crop={spec.crop!r}; use one of {', '.join(CROPS)}.")
    if spec.max_depth is not None and not spec.max_depth > 0:
        raise One4DInputError(f"max_depth={spec.max_depth!r}; use a positive distance in metres, or None for no limit.")


def clip_frames(length: int, spec: ClipSpec, time_stride: int, source: str, rng: np.random.Generator | None,
                start: int | None) -> np.ndarray:
    """The sequence's frame numbers a clip takes: ``start, start + stride, ...`` (start drawn with ``rng``)."""
    span = (spec.frames - 1) * spec.frame_stride + 1
    if span > length:
        widest = (length - 1) // (spec.frames - 1)
        most = (length - 1) // time_stride * time_stride + 1
        raise One4DInputError(
            f"{source} has {length} frames; {spec.frames} frames at frame_stride {spec.frame_stride} span {span}. "
            + (f"Use frame_stride={widest} or less, or " if widest >= 1 else "Use ")
            + f"fewer frames (at most {most} at frame_stride 1)."
        )
    if start is None:
        start = int(rng.integers(0, length - span + 1)) if rng is not None else 0
    if not 0 <= start <= length - span:
        raise One4DInputError(f"start={start} is outside 0..{length - span} for {source} ({length} frames, span {span}).")
    return start + spec.frame_stride * np.arange(spec.frames, dtype=np.int64)


def resize_crop_plan(height: int, width: int, spec: ClipSpec, rng: np.random.Generator | None) -> tuple[int, int, int, int]:
    """``(resized height, resized width, crop y0, crop x0)`` that cover ``spec``'s size with the aspect kept."""
    s = max(spec.height / height, spec.width / width)
    rh, rw = max(spec.height, round(height * s)), max(spec.width, round(width * s))
    if spec.crop == "center":
        return rh, rw, (rh - spec.height) // 2, (rw - spec.width) // 2
    if rng is None:
        raise One4DInputError("crop='random' needs an rng: pass rng=np.random.default_rng(seed).")
    return rh, rw, int(rng.integers(0, rh - spec.height + 1)), int(rng.integers(0, rw - spec.width + 1))


def pixel_transform(height: int, width: int, plan: tuple[int, int, int, int]) -> np.ndarray:
    """``A [3, 3]`` that maps source pixels to output pixels (``K' = A K``; module docstring)."""
    rh, rw, y0, x0 = plan
    sx, sy = rw / width, rh / height
    return np.array([[sx, 0.0, 0.5 * sx - 0.5 - x0], [0.0, sy, 0.5 * sy - 0.5 - y0], [0.0, 0.0, 1.0]])


def resize_rgb(rgb: np.ndarray, plan: tuple[int, int, int, int], spec: ClipSpec) -> np.ndarray:
    """Frames ``[F, h, w, 3]`` resized and cropped to ``[F, H, W, 3]``."""
    rh, rw, y0, x0 = plan
    if (rh, rw) == rgb.shape[1:3]:
        return rgb[:, y0:y0 + spec.height, x0:x0 + spec.width].copy()
    interp = cv2.INTER_AREA if rh < rgb.shape[1] else cv2.INTER_LINEAR
    return np.stack([cv2.resize(f, (rw, rh), interpolation=interp)[y0:y0 + spec.height, x0:x0 + spec.width] for f in rgb])


def resize_depth(depth: np.ndarray, valid: np.ndarray, plan: tuple[int, int, int, int], spec: ClipSpec) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``[F, h, w]`` and validity resampled in inverse depth and cropped (module docstring)."""
    rh, rw, y0, x0 = plan
    window = (slice(None), slice(y0, y0 + spec.height), slice(x0, x0 + spec.width))
    if (rh, rw) == depth.shape[1:]:
        return depth[window].copy(), valid[window].copy()
    out_d, out_v = [], []
    for d, v in zip(depth.astype(np.float64), valid):
        inv = np.where(v, 1.0 / np.where(v, d, 1.0), 0.0)
        mixed = [cv2.resize(a, (rw, rh), interpolation=cv2.INTER_LINEAR)[window[1:]] for a in (inv, np.where(v, d, 0.0), v * 1.0)]
        inv_r, d_r, v_r = mixed
        ok = (v_r > 1.0 - 1e-9) & (inv_r > 0) & (d_r * inv_r <= MIX_LIMIT)
        out_d.append(np.where(ok, 1.0 / np.where(ok, inv_r, 1.0), 0.0))
        out_v.append(ok)
    return np.stack(out_d).astype(np.float32), np.stack(out_v)


def sample_clip(sequence: ClipSequence, spec: ClipSpec, time_stride: int, size_multiple: int,
                rng: np.random.Generator | None = None, start: int | None = None) -> TrainingClip:
    """Cut, resize, crop and lift one training clip from ``sequence`` (module docstring)."""
    check_spec(spec, time_stride, size_multiple)
    frames = clip_frames(len(sequence), spec, time_stride, sequence.source, rng, start)
    record = sequence.read(frames)
    plan = resize_crop_plan(*record.depth.shape[1:], spec, rng)
    K = pixel_transform(*record.depth.shape[1:], plan) @ record.K
    depth, valid = resize_depth(record.depth, record.valid, plan, spec)
    if spec.max_depth is not None:
        valid &= depth <= spec.max_depth
    depth = np.where(valid, depth, 0.0).astype(np.float32)
    c2w = np.linalg.inv(record.c2w[0]) @ record.c2w
    points = np.where(valid[..., None], unproject_depth(depth, K, c2w), 0.0).astype(np.float32)
    try:
        norm = fit_normalization(points, valid)
    except One4DInputError as exc:
        raise One4DInputError(f"{sequence.source} frames {frames[0]}..{frames[-1]}: {exc}") from exc
    normalized = np.where(valid[..., None], normalize(points, norm), 0.0).astype(np.float32)
    return TrainingClip(resize_rgb(record.rgb, plan, spec), depth, points, normalized, valid, K.astype(np.float32),
                        c2w.astype(np.float32), norm, record.caption, record.source, frames)
