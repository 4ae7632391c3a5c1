"""Checks and conversions for the arrays users hand to the geometry and export functions.

Every public geometry or export function funnels its inputs through these helpers, so bad input (wrong
shape or dtype, all NaN, zero extent) fails early with :class:`one4d.errors.One4DInputError` naming the
input and the fix, instead of crashing deep inside numpy or torch. Torch tensors are accepted and turned
into numpy arrays (detached, on the CPU).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import One4DInputError


def to_numpy(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a numpy array (torch tensors are detached and moved to the CPU)."""
    if value is None:
        raise One4DInputError(f"{name} is missing: pass a numpy array.")
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    try:
        return np.asarray(value)
    except Exception as exc:  # e.g. ragged nested lists
        raise One4DInputError(f"{name} could not be read as an array ({exc}); pass a numpy array.") from exc


def as_float_array(value: Any, name: str, dtype: type = np.float32) -> np.ndarray:
    """Return a contiguous float array of ``dtype``; integers are converted, strings, objects and bools rejected."""
    arr = to_numpy(value, name)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise One4DInputError(
            f"{name} has dtype {arr.dtype}; expected a float array (float32 preferred). Convert it with .astype(np.float32)."
        )
    return np.ascontiguousarray(arr, dtype=dtype)


def as_pointmap(points: Any, name: str = "points", dtype: type = np.float32) -> np.ndarray:
    """Validate a pointmap video ``[F, H, W, 3]`` and return it as a contiguous float array."""
    arr = as_float_array(points, name, dtype)
    if arr.ndim == 3 and arr.shape[-1] == 3:
        raise One4DInputError(
            f"{name} has shape {tuple(arr.shape)}, a single frame; expected [F, H, W, 3]. Add a frame axis: {name}[None]."
        )
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise One4DInputError(
            f"{name} has shape {tuple(arr.shape)}; expected a pointmap video [F, H, W, 3] (XYZ last). "
            "If the channels come first ([F, 3, H, W]) move them last with .transpose(0, 2, 3, 1)."
        )
    if min(arr.shape[:3]) < 1:
        raise One4DInputError(f"{name} has an empty axis {tuple(arr.shape)}; it needs at least one frame and pixel.")
    return arr


def as_mask(mask: Any, shape: tuple[int, ...], name: str = "valid") -> np.ndarray:
    """Validate a boolean mask of the given shape (numbers are read as nonzero = True)."""
    arr = to_numpy(mask, name)
    if tuple(arr.shape) != tuple(shape):
        raise One4DInputError(f"{name} has shape {tuple(arr.shape)}; expected {tuple(shape)} to match the points.")
    if arr.dtype != bool:
        if not (np.issubdtype(arr.dtype, np.number)):
            raise One4DInputError(f"{name} has dtype {arr.dtype}; expected a boolean mask.")
        arr = arr != 0
    return np.ascontiguousarray(arr)


def as_colors(colors: Any, shape: tuple[int, ...], name: str = "colors") -> np.ndarray:
    """Colors of the given leading shape as uint8 RGB. Floats are read as [0, 1] (ComfyUI IMAGE), ints as 0..255."""
    arr = to_numpy(colors, name)
    if tuple(arr.shape[:-1]) != tuple(shape) or arr.shape[-1] not in (3, 4):
        raise One4DInputError(
            f"{name} has shape {tuple(arr.shape)}; expected {tuple(shape) + (3,)} (RGB last, pixel-aligned with the points)."
        )
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
        return np.ascontiguousarray(np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8))
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        return np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8))
    raise One4DInputError(f"{name} has dtype {arr.dtype}; expected uint8 0..255 or float 0..1.")


def as_intrinsics(K: Any, frames: int | None = None, name: str = "K") -> np.ndarray:
    """Validate intrinsics ``[F, 3, 3]`` (a single ``[3, 3]`` is broadcast to ``frames``)."""
    arr = as_float_array(K, name, np.float64)
    if arr.shape == (3, 3):
        arr = np.broadcast_to(arr, (frames or 1, 3, 3)).copy()
    if arr.ndim != 3 or arr.shape[1:] != (3, 3) or (frames is not None and arr.shape[0] != frames):
        want = f"[{frames}, 3, 3]" if frames is not None else "[F, 3, 3]"
        raise One4DInputError(f"{name} has shape {tuple(arr.shape)}; expected intrinsics {want} in pixels.")
    if not np.isfinite(arr).all() or (arr[:, 0, 0] <= 0).any() or (arr[:, 1, 1] <= 0).any():
        raise One4DInputError(f"{name} has non-finite entries or a focal length <= 0; pass positive pixel focals.")
    return arr


def as_poses(c2w: Any, frames: int | None = None, name: str = "c2w") -> np.ndarray:
    """Validate camera-to-world poses ``[F, 4, 4]`` (a single ``[4, 4]`` is broadcast to ``frames``)."""
    arr = as_float_array(c2w, name, np.float64)
    if arr.shape == (4, 4):
        arr = np.broadcast_to(arr, (frames or 1, 4, 4)).copy()
    if arr.ndim == 3 and arr.shape[1:] == (3, 4):
        bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), (arr.shape[0], 1, 4))
        arr = np.concatenate([arr, bottom], axis=1)
    if arr.ndim != 3 or arr.shape[1:] != (4, 4) or (frames is not None and arr.shape[0] != frames):
        want = f"[{frames}, 4, 4]" if frames is not None else "[F, 4, 4]"
        raise One4DInputError(f"{name} has shape {tuple(arr.shape)}; expected camera-to-world poses {want}.")
    if not np.isfinite(arr).all():
        raise One4DInputError(f"{name} has non-finite entries; pass finite camera-to-world matrices.")
    return arr
