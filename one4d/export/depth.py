"""Depth maps as 16-bit PNG (with the scale stored) and as float EXR where OpenCV supports it.

16-bit PNG: ``value = round(depth / scale)``, ``0`` = invalid, so ``depth = value * scale``. The scale
(pointmap units per count) is chosen per sequence so the largest valid depth maps to 65000 (unless
given, e.g. 0.001 for millimetres when depth is in metres). It is stored twice:
- in each PNG as a ``tEXt`` chunk with keyword ``one4d`` and a JSON value
  ``{"depth_scale": s, "invalid_value": 0, "formula": "depth = value * depth_scale", ...}``
  (any PNG reader can list text chunks, e.g. Pillow's ``Image.open(f).text``);
- in a sidecar JSON next to the files (``<stem>.json`` for one image, ``depth_scale.json`` for a
  sequence), for tools that drop PNG text chunks.
Depth is z-depth along the camera's optical axis (OpenCV camera), not the distance to the center.

EXR: float32, invalid = 0. OpenCV only writes EXR when it was built with OpenEXR and the environment
variable ``OPENCV_IO_ENABLE_OPENEXR=1`` was set before its EXR codec was first used; we never set it
(the switch exists because reading untrusted EXR files was a security risk). :func:`exr_available`
probes it; without it :func:`export_depth_exr` warns and returns None, writing nothing.
"""
from __future__ import annotations

import json
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import One4DInputError
from ..geometry.inputs import as_float_array, as_mask
from ..progress import track
from .atomic import atomic_folder, atomic_path, prepare_path, write_bytes_atomic

PNG_TEXT_KEY = "one4d"
MAX_CODE = 65000


def _depth_array(depth: Any, valid: Any, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    d = as_float_array(depth, "depth", np.float32)
    if d.ndim != ndim:
        want = "[H, W]" if ndim == 2 else "[F, H, W]"
        raise One4DInputError(f"depth has shape {tuple(d.shape)}; expected {want}.")
    ok = np.isfinite(d) & (d > 0)
    if valid is not None:
        ok &= as_mask(valid, d.shape, "valid")
    return d, ok


def depth_scale_for(depth: np.ndarray, valid: np.ndarray) -> float:
    """Scale (units per count) that maps the largest valid depth to 65000."""
    if not valid.any():
        raise One4DInputError("depth has no valid positive value; nothing to encode.")
    return float(depth[valid].max()) / MAX_CODE


def _png_with_text(img16: np.ndarray, text: str) -> bytes:
    ok, buf = cv2.imencode(".png", img16)
    if not ok:
        raise One4DInputError("OpenCV could not encode the depth PNG.")
    data = buf.tobytes()
    payload = PNG_TEXT_KEY.encode("latin-1") + b"\x00" + text.encode("latin-1")
    chunk = struct.pack(">I", len(payload)) + b"tEXt" + payload
    chunk += struct.pack(">I", zlib.crc32(b"tEXt" + payload) & 0xFFFFFFFF)
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature + IHDR (length, type, 13 data bytes, crc)
    return data[:ihdr_end] + chunk + data[ihdr_end:]


def _meta(scale: float, extra: dict | None = None) -> dict:
    meta = {
        "depth_scale": scale,
        "invalid_value": 0,
        "formula": "depth = value * depth_scale",
        "depth_kind": "z-depth along the OpenCV camera's optical axis, in pointmap units",
    }
    if extra:
        meta.update(extra)
    return meta


def _encode(d: np.ndarray, ok: np.ndarray, scale: float) -> np.ndarray:
    codes = np.rint(np.where(ok, d, 0.0) / scale)
    if (codes > 65535).any():
        raise One4DInputError(
            f"depth_scale={scale:g} is too small: depth {float(d[ok].max()):g} needs more than 16 bits; pass a larger scale."
        )
    out = codes.astype(np.uint16)
    out[ok & (out == 0)] = 1  # a valid depth never encodes as the invalid value
    return out


def export_depth_png(path: str | os.PathLike, depth: Any, valid: Any = None, scale: float | None = None) -> float:
    """Write one depth map ``[H, W]`` as 16-bit PNG (+ ``<stem>.json``); returns the scale used."""
    d, ok = _depth_array(depth, valid, 2)
    scale = depth_scale_for(d, ok) if scale is None else float(scale)
    if not scale > 0:
        raise One4DInputError(f"scale={scale}; pass a positive depth scale (units per count).")
    path = prepare_path(path, ".png")
    meta = _meta(scale)
    write_bytes_atomic(path, _png_with_text(_encode(d, ok, scale), json.dumps(meta)))
    write_bytes_atomic(path.with_suffix(".json"), json.dumps(meta, indent=2).encode())
    return scale


def export_depth_pngs(
    folder: str | os.PathLike, depth: Any, valid: Any = None, scale: float | None = None, prefix: str = "depth_"
) -> tuple[list[Path], float]:
    """Write a depth sequence ``[F, H, W]`` with one shared scale, plus ``depth_scale.json``; the folder's files
    appear together, or not at all (cancel or error)."""
    d, ok = _depth_array(depth, valid, 3)
    scale = depth_scale_for(d, ok) if scale is None else float(scale)
    if not scale > 0:
        raise One4DInputError(f"scale={scale}; pass a positive depth scale (units per count).")
    out = Path(folder)
    names = [f"{prefix}{i:05d}.png" for i in range(d.shape[0])]
    with atomic_folder(out) as stage:
        for i in track("writing depth PNGs", range(d.shape[0])):
            meta = _meta(scale, {"frame": i})
            write_bytes_atomic(stage / names[i], _png_with_text(_encode(d[i], ok[i], scale), json.dumps(meta)))
        side = _meta(scale, {"frames": d.shape[0], "files": names})
        write_bytes_atomic(stage / "depth_scale.json", json.dumps(side, indent=2).encode())
    return [out / n for n in names], scale


def read_png_text(path: str | os.PathLike) -> dict[str, str]:
    """All ``tEXt`` chunks of a PNG file as ``{keyword: text}``."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise One4DInputError(f"{str(path)!r} is not a PNG file.")
    out, pos = {}, 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if ctype == b"tEXt" and b"\x00" in body:
            key, text = body.split(b"\x00", 1)
            out[key.decode("latin-1")] = text.decode("latin-1")
        if ctype == b"IEND":
            break
        pos += 12 + length
    return out


def read_depth_png(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a depth PNG written here: returns (depth float32 with 0 where invalid, valid mask)."""
    meta_text = read_png_text(path).get(PNG_TEXT_KEY)
    if meta_text is not None:
        scale = float(json.loads(meta_text)["depth_scale"])
    else:
        side = Path(path).with_suffix(".json")
        if not side.exists():
            side = Path(path).parent / "depth_scale.json"
        if not side.exists():
            raise One4DInputError(f"{str(path)!r} carries no depth scale (no 'one4d' text chunk, no sidecar JSON).")
        scale = float(json.loads(side.read_text())["depth_scale"])
    codes = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if codes is None or codes.dtype != np.uint16:
        raise One4DInputError(f"{str(path)!r} is not a 16-bit depth PNG.")
    return codes.astype(np.float32) * np.float32(scale), codes > 0


def exr_available() -> bool:
    """True when this OpenCV can encode EXR (built with OpenEXR and OPENCV_IO_ENABLE_OPENEXR=1)."""
    try:
        ok, _ = cv2.imencode(".exr", np.zeros((1, 1), np.float32))
        return bool(ok)
    except cv2.error:
        return False


def export_depth_exr(path: str | os.PathLike, depth: Any, valid: Any = None) -> Path | None:
    """Write one float32 depth map ``[H, W]`` (invalid = 0) as EXR; None (with a warning) if unsupported."""
    d, ok = _depth_array(depth, valid, 2)
    if not exr_available():
        warnings.warn(
            "EXR depth skipped: this OpenCV cannot write EXR (it needs OpenEXR support and the environment variable "
            "OPENCV_IO_ENABLE_OPENEXR=1 set before OpenCV is imported). The 16-bit PNG export has the same data.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    path = prepare_path(path, ".exr")
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.where(ok, d, 0.0).astype(np.float32)):
            raise One4DInputError(f"OpenCV failed to write {str(path)!r} as EXR.")
    return path
