"""NPZ bundle: everything a script needs to reload a reconstruction with numpy alone.

Keys (all optional except ``points``): ``points [F,H,W,3]`` float32 (world = frame-0 camera, OpenCV
axes), ``colors [F,H,W,3]`` uint8, ``depth [F,H,W]`` float32 z-depth, ``valid [F,H,W]`` bool,
``K [F,3,3]`` pixels, ``c2w [F,4,4]`` OpenCV camera-to-world, ``normalization_json`` (a JSON string of
the pointmap normalization parameters, so the [-1, 1] model space can be restored), ``convention`` (a
sentence). No object arrays: it loads with ``np.load(path)`` and ``allow_pickle=False``. Uncompressed by
default (writing 17.8M points compressed takes tens of seconds); ``compress=True`` trades time for size.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import One4DInputError
from ..geometry.inputs import as_colors, as_float_array, as_intrinsics, as_mask, as_poses
from .atomic import atomic_path, prepare_path

CONVENTION = (
    "points: world = camera of frame 0, OpenCV axes (x right, y down, z forward); c2w: OpenCV camera-to-world; "
    "K: pixels, pixel centers at integer coordinates; depth: z-depth, 0 where invalid"
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def export_npz(
    path: str | os.PathLike,
    points: Any,
    colors: Any = None,
    depth: Any = None,
    valid: Any = None,
    K: Any = None,
    c2w: Any = None,
    normalization: Mapping[str, Any] | None = None,
    compress: bool = False,
) -> Path:
    """Write the NPZ bundle described in the module docstring, atomically."""
    p = as_float_array(points, "points", np.float32)
    if p.ndim != 4 or p.shape[-1] != 3:
        raise One4DInputError(f"points has shape {tuple(p.shape)}; export_npz expects [F, H, W, 3].")
    F = p.shape[0]
    arrays: dict[str, np.ndarray] = {"points": p, "convention": np.array(CONVENTION)}
    if colors is not None:
        arrays["colors"] = as_colors(colors, p.shape[:-1], "colors")
    if depth is not None:
        d = as_float_array(depth, "depth", np.float32)
        if d.shape != p.shape[:-1]:
            raise One4DInputError(f"depth has shape {d.shape}; expected {p.shape[:-1]} to match the points.")
        arrays["depth"] = d
    if valid is not None:
        arrays["valid"] = as_mask(valid, p.shape[:-1], "valid")
    if K is not None:
        arrays["K"] = as_intrinsics(K, F).astype(np.float32)
    if c2w is not None:
        arrays["c2w"] = as_poses(c2w, F).astype(np.float32)
    if normalization is not None:
        try:
            arrays["normalization_json"] = np.array(json.dumps(_jsonable(normalization)))
        except TypeError as exc:
            raise One4DInputError(f"normalization must be JSON-serializable numbers/lists/dicts ({exc}).") from exc
    path = prepare_path(path, ".npz")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:  # a file object keeps numpy from appending another .npz
            (np.savez_compressed if compress else np.savez)(fh, **arrays)
    return path


def load_npz(path: str | os.PathLike) -> dict[str, Any]:
    """Load a bundle written by :func:`export_npz`; ``normalization`` comes back as a dict."""
    with np.load(path, allow_pickle=False) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files}
    if "normalization_json" in out:
        out["normalization"] = json.loads(str(out.pop("normalization_json")))
    if "convention" in out:
        out["convention"] = str(out["convention"])
    return out
