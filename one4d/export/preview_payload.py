"""Binary payload of the 4D point cloud preview widget (``.o4dp`` files).

The preview and save nodes write one payload per run; the web widget (``web/js``) fetches it
through ComfyUI's ``/view`` route and draws it with WebGL. The format is documented in
``docs/preview.md``; in short (all numbers little-endian)::

    offset 0   4 bytes   magic b"O4DP"
           4   uint32    format version (1)
           8   uint32    header length in bytes (JSON, UTF-8, space-padded to a multiple of 8)
          12   uint32    reserved, 0
          16   header    JSON object: frame count, fps, points per frame, section offsets, bbox,
                         colour ranges, cameras
          ...  positions float16 [N, 4] = x, y, z, 1.0; all frames one after the other (OpenCV
                         axes, world = camera of frame 0), at the byte offset the header gives
          ...  colors    uint8 [N, 4] = sRGB r, g, b, 255; same order (both sections 8-aligned)

Decisions:
- float16 positions, uploaded to the GPU as they are (WebGL2 HALF_FLOAT), with a relative
  precision (1/2048) that follows the depth-proportional noise of a pointmap and copes with far
  outliers better than a bbox-quantized integer grid would.
- Four components, not three (12 bytes a point instead of 9): 3-component 16-bit and 8-bit vertex
  formats are missing from Direct3D 11 and most Vulkan drivers, where the browser's WebGL layer
  (ANGLE) then converts the whole buffer before the first draw. Measured in headless chromium
  with software WebGL on the 17.8M-point benchmark: first picture after 6-9 s with 3 components,
  under 2 s with 4. The fourth components (w = 1.0, alpha = 255) are reserved; readers ignore them.
- Subsampling is deterministic: the valid points of frame ``t`` are permuted with a generator
  seeded by ``(PERMUTATION_SEED, t)`` and the first ``max_points_per_frame`` are kept. Points are
  stored in that permuted order even when none are dropped, so any prefix of a frame is itself a
  uniform subsample: the widget's own point budget just draws fewer points of each frame.
- Points that are masked out, not finite, or beyond float16's range (|x| > 65504) are dropped;
  the count is reported as ``dropped_points``.
- Colour ranges (depth to the frame's camera, height = -y of frame 0's camera) and a robust
  bounding box (1st to 99th percentile, for "fit to view") are computed here once, from a sample
  of the written points, so the widget needs no pass over the data.
- Written atomically (:func:`one4d.export.atomic.atomic_path`); frames are selected and packed with a
  cancellation check before each and progress reported per frame (:mod:`one4d.progress`).

This module needs numpy only; it never imports ComfyUI.
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Any

import numpy as np

from ..errors import One4DInputError
from ..progress import check_cancelled, track
from .atomic import atomic_path

MAGIC = b"O4DP"
VERSION = 1
PERMUTATION_SEED = 0x4F344450  # "O4DP"
_PREAMBLE = struct.Struct("<4sIII")
_ALIGN = 8
_FLOAT16_MAX = 65504.0
_STATS_SAMPLE = 200_000


def write_preview_payload(
    path: str | os.PathLike,
    points: np.ndarray,
    colors: np.ndarray,
    valid: np.ndarray | None = None,
    K: np.ndarray | None = None,
    c2w: np.ndarray | None = None,
    max_points_per_frame: int = 200_000,
    fps: float = 8.0,
) -> dict:
    """Write the preview payload of a pointmap video to ``path`` and return its metadata.

    points: ``[F, H, W, 3]`` float, OpenCV axes, world = camera of frame 0.
    colors: ``[F, H, W, 3]`` uint8, or float in [0, 1].
    valid: optional ``[F, H, W]`` bool mask of the points to show.
    K: optional intrinsics in pixels, ``[F, 3, 3]`` or one ``[3, 3]`` for all frames.
    c2w: optional camera-to-world poses (OpenCV), ``[F, 4, 4]`` or ``[F, 3, 4]``.
    max_points_per_frame: at most this many points of each frame are written (see module doc).
    fps: default playback speed of the widget.

    Returns ``{"format", "version", "path", "bytes", "frames", "image_size", "fps",
    "points_per_frame", "total_points", "dropped_points", "bbox": {"min", "max"}}``.
    """
    pts = _check_points(points)
    F, H, W, _ = pts.shape
    rgb = _check_colors(colors, (F, H, W))
    mask = _check_valid(valid, (F, H, W))
    K_all = _check_intrinsics(K, F)
    c2w_all = _check_poses(c2w, F)
    budget = _check_positive_int("max_points_per_frame", max_points_per_frame)
    fps = _check_fps(fps)

    flat_pts = pts.reshape(F, H * W, 3)
    keep_masks, dropped = _kept_points(flat_pts, mask)
    source_counts = [int(np.count_nonzero(m)) for m in keep_masks]
    counts = [min(n, budget) for n in source_counts]
    if sum(counts) == 0:
        raise One4DInputError(
            "points/valid: no point is left to preview: every point is masked out by `valid` or "
            "is not finite. Check the valid mask (True = keep) and the pointmap for NaN/inf.")
    positions, colors_u8, bbox = _pack_frames(flat_pts, rgb.reshape(F, H * W, 3), keep_masks, counts)
    header = _make_header(positions, bbox, counts, source_counts, F, H, W, fps, budget, K_all, c2w_all)
    size = _write_atomically(path, header, positions, colors_u8)
    return {
        "format": "one4d-preview",
        "version": VERSION,
        "path": os.fspath(path),
        "bytes": size,
        "frames": F,
        "image_size": [H, W],
        "fps": fps,
        "points_per_frame": counts,
        "total_points": int(sum(counts)),
        "dropped_points": dropped,
        "bbox": header["bbox"],
    }


def _check_points(points: Any) -> np.ndarray:
    """The pointmap video as a real-valued ``[F, H, W, 3]`` array with at least one pixel."""
    pts = _as_array("points", points)
    if pts.ndim != 4 or pts.shape[-1] != 3 or pts.shape[0] < 1:
        raise One4DInputError(
            f"points: expected a pointmap video of shape [F, H, W, 3], got {tuple(pts.shape)}; "
            "add a frame axis for a single frame (points[None]) and put XYZ last.")
    if not (np.issubdtype(pts.dtype, np.floating) or np.issubdtype(pts.dtype, np.integer)):
        raise One4DInputError(f"points: expected real numbers, got dtype {pts.dtype}.")
    if pts.shape[1] < 1 or pts.shape[2] < 1:
        raise One4DInputError(f"points: the frames are empty ({pts.shape[1]}x{pts.shape[2]}); pass at least one pixel.")
    return pts


def _kept_points(flat_pts: np.ndarray, mask: np.ndarray | None) -> tuple[list[np.ndarray], int]:
    """Per frame, the points to keep (requested, finite, within float16's range), and how many were dropped."""
    keep_masks = []
    dropped = 0
    for t in range(flat_pts.shape[0]):
        check_cancelled("preview payload")
        p = flat_pts[t]
        # NaN compares False, so this drops non-finite points and float16 overflows at once
        ok = (np.abs(p[:, 0]) <= _FLOAT16_MAX) & (np.abs(p[:, 1]) <= _FLOAT16_MAX) & (np.abs(p[:, 2]) <= _FLOAT16_MAX)
        if mask is not None:
            requested = mask[t].reshape(-1)
            dropped += int(np.count_nonzero(requested & ~ok))
            ok &= requested
        else:
            dropped += int(ok.size - np.count_nonzero(ok))
        keep_masks.append(ok)
    return keep_masks, dropped


def _pack_frames(flat_pts: np.ndarray, flat_rgb: np.ndarray, keep_masks: list[np.ndarray],
                 counts: list[int]) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Positions ``[N, 4]`` float16 and colors ``[N, 4]`` uint8 of every frame's deterministic subsample, in
    permuted order (module docstring), and the bounding box of what was written."""
    total = int(sum(counts))
    positions = np.empty((total, 4), dtype="<f2")
    positions[:, 3] = 1.0
    colors_u8 = np.empty((total, 4), dtype=np.uint8)
    colors_u8[:, 3] = 255
    lo = np.full(3, np.inf, dtype=np.float32)
    hi = np.full(3, -np.inf, dtype=np.float32)
    start = 0
    for t in track("preview payload", range(flat_pts.shape[0])):
        idx = np.flatnonzero(keep_masks[t])
        rng = np.random.default_rng([PERMUTATION_SEED, t])
        idx = idx[rng.permutation(idx.size)[: counts[t]]]
        stop = start + idx.size
        positions[start:stop, :3] = np.take(flat_pts[t], idx, axis=0)
        colors_u8[start:stop, :3] = _to_uint8(np.take(flat_rgb[t], idx, axis=0))
        if idx.size:
            written = positions[start:stop, :3].astype(np.float32)
            lo = np.minimum(lo, [written[:, c].min() for c in range(3)])
            hi = np.maximum(hi, [written[:, c].max() for c in range(3)])
        start = stop
    return positions, colors_u8, (lo, hi)


def read_preview_payload(path: str | os.PathLike) -> dict:
    """Read a payload written by :func:`write_preview_payload`.

    Returns ``{"header": dict, "frames": F, "fps": float, "points": [n_t x 3 float32 per frame],
    "colors": [n_t x 3 uint8 per frame], "K": [F, 3, 3] or None, "c2w": [F, 4, 4] or None}``.
    """
    with open(path, "rb") as f:
        data = f.read()
    name = os.fspath(path)
    if len(data) < _PREAMBLE.size:
        raise One4DInputError(f"{name}: not a One4D preview payload (file too short).")
    magic, version, header_len, _ = _PREAMBLE.unpack_from(data, 0)
    if magic != MAGIC:
        raise One4DInputError(f"{name}: not a One4D preview payload (magic {magic!r}, expected {MAGIC!r}).")
    if version != VERSION:
        raise One4DInputError(
            f"{name}: preview payload version {version} is not supported (this library reads "
            f"version {VERSION}); write it again with this version of the node pack.")
    end = _PREAMBLE.size + header_len
    if end > len(data):
        raise One4DInputError(f"{name}: truncated preview payload (header runs past the end).")
    header = json.loads(data[_PREAMBLE.size:end].decode("utf-8"))
    total = int(header["total_points"])
    pos_sec, col_sec = header["positions"], header["colors"]
    if pos_sec["offset"] + total * 8 > len(data) or col_sec["offset"] + total * 4 > len(data):
        raise One4DInputError(f"{name}: truncated preview payload (data sections run past the end).")
    positions = np.frombuffer(data, dtype="<f2", count=total * 4, offset=pos_sec["offset"]).reshape(total, 4)[:, :3]
    colors = np.frombuffer(data, dtype=np.uint8, count=total * 4, offset=col_sec["offset"]).reshape(total, 4)[:, :3]
    offsets = header["frame_offsets"]
    counts = header["points_per_frame"]
    cams = header.get("cameras") or {}
    F = int(header["frames"])
    return {
        "header": header,
        "frames": F,
        "fps": float(header["fps"]),
        "points": [positions[o:o + n].astype(np.float32) for o, n in zip(offsets, counts)],
        "colors": [colors[o:o + n].copy() for o, n in zip(offsets, counts)],
        "K": np.asarray(cams["K"], dtype=np.float64).reshape(F, 3, 3) if cams.get("K") else None,
        "c2w": np.asarray(cams["c2w"], dtype=np.float64).reshape(F, 4, 4) if cams.get("c2w") else None,
    }


# ----------------------------------------------------------------------------- input checks

def _as_array(name: str, value: Any) -> np.ndarray:
    """A numpy array of ``value`` (torch tensors included); unreadable values are an input error."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a bad input
        raise One4DInputError(f"{name}: could not be read as an array ({exc}); pass a numpy array.") from exc


def _check_colors(colors: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """Per-pixel colours as uint8, or float checked to lie in [0, 1]."""
    rgb = _as_array("colors", colors)
    if rgb.shape != (*shape, 3):
        raise One4DInputError(
            f"colors: expected shape {(*shape, 3)} (one RGB colour per pointmap pixel), got "
            f"{tuple(rgb.shape)}; resize the RGB video to the pointmap's frames and size and drop alpha.")
    if rgb.dtype == np.uint8:
        return rgb
    if not np.issubdtype(rgb.dtype, np.floating):
        raise One4DInputError(f"colors: expected uint8 or float in [0, 1], got dtype {rgb.dtype}.")
    if not np.isfinite(rgb).all():
        raise One4DInputError("colors: contain NaN or inf; pass finite values in [0, 1].")
    lo, hi = float(rgb.min()), float(rgb.max())
    if lo < -0.01 or hi > 1.01:
        raise One4DInputError(
            f"colors: float colours must lie in [0, 1], got values in [{lo:.3g}, {hi:.3g}]; "
            "divide 0-255 colours by 255 or pass them as uint8.")
    return rgb


def _check_valid(valid: Any, shape: tuple[int, int, int]) -> np.ndarray | None:
    """The optional keep-mask as bool ``[F, H, W]`` (a trailing axis of 1 and numeric masks accepted)."""
    if valid is None:
        return None
    mask = _as_array("valid", valid)
    if mask.shape == (*shape, 1):
        mask = mask[..., 0]
    if mask.shape != shape:
        raise One4DInputError(
            f"valid: expected a mask of shape {shape} (one flag per pointmap pixel), got {tuple(mask.shape)}.")
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating):
        return mask > 0.5
    raise One4DInputError(f"valid: expected a bool mask, got dtype {mask.dtype}.")


def _check_intrinsics(K: Any, frames: int) -> np.ndarray | None:
    """Optional intrinsics as float64 ``[F, 3, 3]`` with finite positive focals (one ``[3, 3]`` is repeated)."""
    if K is None:
        return None
    k = _as_array("K", K).astype(np.float64)
    if k.shape == (3, 3):
        k = np.broadcast_to(k, (frames, 3, 3))
    if k.shape != (frames, 3, 3):
        raise One4DInputError(
            f"K: expected intrinsics of shape [{frames}, 3, 3] (pixels, one per frame) or [3, 3], got {tuple(k.shape)}.")
    if not np.isfinite(k).all() or (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
        raise One4DInputError("K: focal lengths must be finite and positive (K[:, 0, 0] and K[:, 1, 1], in pixels).")
    return np.ascontiguousarray(k)


def _check_poses(c2w: Any, frames: int) -> np.ndarray | None:
    """Optional camera-to-world poses as finite float64 ``[F, 4, 4]`` (``[F, 3, 4]`` gets its last row)."""
    if c2w is None:
        return None
    m = _as_array("c2w", c2w).astype(np.float64)
    if m.shape == (frames, 3, 4):
        m = np.concatenate([m, np.broadcast_to([[[0.0, 0.0, 0.0, 1.0]]], (frames, 1, 4))], axis=1)
    if m.shape != (frames, 4, 4):
        raise One4DInputError(
            f"c2w: expected camera-to-world poses of shape [{frames}, 4, 4] or [{frames}, 3, 4], got {tuple(m.shape)}.")
    if not np.isfinite(m).all():
        raise One4DInputError("c2w: contains NaN or inf; pass finite camera-to-world matrices.")
    return m


def _check_positive_int(name: str, value: Any) -> int:
    """``value`` as an int, which must be at least 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise One4DInputError(f"{name}: expected a positive integer, got {value!r}.")
    return int(value)


def _check_fps(fps: Any) -> float:
    """The playback speed as a float in (0, 240]."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        value = float("nan")
    if not math.isfinite(value) or value <= 0 or value > 240:
        raise One4DInputError(f"fps: expected a playback speed in (0, 240] frames per second, got {fps!r}.")
    return value


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Colours as uint8: unchanged if already uint8, else [0, 1] floats rounded to 0-255."""
    if rgb.dtype == np.uint8:
        return rgb
    return np.clip(rgb.astype(np.float32) * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


# ----------------------------------------------------------------------------- header and file

def _make_header(positions: np.ndarray, bbox: tuple[np.ndarray, np.ndarray], counts: list[int],
                 source_counts: list[int], F: int, H: int, W: int, fps: float, budget: int,
                 K_all: np.ndarray | None, c2w_all: np.ndarray | None) -> dict:
    """The JSON header: counts and frame offsets, bounding boxes, colour ranges and cameras (offsets filled later)."""
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    sample, frame_of = _stats_sample(positions, counts)
    lo, hi = np.percentile(sample, 1.0, axis=0), np.percentile(sample, 99.0, axis=0)
    if c2w_all is not None:  # depth along the optical axis of each point's own frame camera
        centers, forwards = c2w_all[frame_of, :3, 3], c2w_all[frame_of, :3, 2]
        depth = np.einsum("ij,ij->i", sample - centers, forwards)
    else:  # no cameras: the world is the camera of frame 0
        depth = sample[:, 2]
    height = -sample[:, 1]  # OpenCV y points down
    header = {
        "format": "one4d-preview",
        "version": VERSION,
        "frames": F,
        "image_size": [H, W],
        "fps": fps,
        "max_points_per_frame": budget,
        "points_per_frame": [int(c) for c in counts],
        "source_points_per_frame": [int(c) for c in source_counts],
        "frame_offsets": offsets,
        "total_points": int(sum(counts)),
        "order": "shuffled",
        "axes": "opencv",
        "world": "camera of frame 0",
        "bbox": {"min": _floats(bbox[0]), "max": _floats(bbox[1])},
        "bbox_robust": {"min": _floats(lo), "max": _floats(hi)},
        "depth_range": _range(depth),
        "height_range": _range(height),
        "cameras": None,
        "positions": {"offset": 0, "dtype": "float16", "shape": [int(sum(counts)), 4], "components": "xyz1"},
        "colors": {"offset": 0, "dtype": "uint8", "shape": [int(sum(counts)), 4], "components": "rgb255",
                   "space": "srgb"},
    }
    if K_all is not None or c2w_all is not None:
        header["cameras"] = {
            "convention": "opencv",
            "K": _floats(K_all.reshape(-1)) if K_all is not None else None,
            "c2w": _floats(c2w_all.reshape(-1)) if c2w_all is not None else None,
        }
    return header


def _stats_sample(positions: np.ndarray, counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """An even spread of written points (float32, with their frame index) for percentile statistics."""
    total = positions.shape[0]
    pick = np.unique(np.linspace(0, total - 1, min(total, _STATS_SAMPLE)).astype(np.int64))
    ends = np.cumsum(counts)
    frame_of = np.searchsorted(ends, pick, side="right")
    return positions[pick, :3].astype(np.float32), frame_of


def _range(values: np.ndarray) -> list[float]:
    """The 2nd to 98th percentile of ``values``, given a 1e-6 width when flat, for the widget's colour scales."""
    lo, hi = (float(v) for v in np.percentile(values, [2.0, 98.0]))
    if not hi > lo:
        hi = lo + 1e-6
    return [lo, hi]


def _floats(values: Any) -> list[float]:
    """Values as a flat list of Python floats (JSON-ready)."""
    return [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]


def _pad(n: int) -> int:
    """Bytes of padding that bring ``n`` to the next multiple of the section alignment."""
    return (-n) % _ALIGN


def _encode(header: dict) -> bytes:
    """The header as compact UTF-8 JSON, space-padded so the data sections start 8-aligned."""
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return text + b" " * _pad(_PREAMBLE.size + len(text))


def _settle_offsets(header: dict, positions: np.ndarray) -> bytes:
    """Fill in the section offsets and return the encoded header; the offsets depend on the header's length,
    which depends on the offsets' digits, so encode until the length stops changing (twice in practice)."""
    for _ in range(4):
        pos_offset = _PREAMBLE.size + len(_encode(header))
        col_offset = pos_offset + positions.nbytes + _pad(positions.nbytes)
        header["positions"]["offset"] = pos_offset
        header["colors"]["offset"] = col_offset
        blob = _encode(header)
        if _PREAMBLE.size + len(blob) == pos_offset:
            return blob
    raise RuntimeError("preview payload header length did not settle")


def _write_atomically(path: str | os.PathLike, header: dict, positions: np.ndarray, colors: np.ndarray) -> int:
    """Write preamble, header and both sections through the atomic writer; returns the file size."""
    blob = _settle_offsets(header, positions)
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise One4DInputError(f"path: folder {folder!r} does not exist; create it first.")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(_PREAMBLE.pack(MAGIC, VERSION, len(blob), 0))
            f.write(blob)
            f.write(np.ascontiguousarray(positions).data)
            f.write(b"\0" * _pad(positions.nbytes))
            f.write(np.ascontiguousarray(colors).data)
            size = f.tell()
    return size
