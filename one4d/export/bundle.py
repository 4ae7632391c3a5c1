"""NPZ bundle: everything a script needs to reload a reconstruction with numpy alone.

Keys (all optional except ``points``): ``points [F,H,W,3]`` float32 (world = frame-0 camera, OpenCV
axes), ``colors [F,H,W,3]`` uint8, ``depth [F,H,W]`` float32 z-depth, ``valid [F,H,W]`` bool,
``K [F,3,3]`` pixels, ``c2w [F,4,4]`` OpenCV camera-to-world, ``normalization_json`` (a JSON string of
the pointmap normalization parameters, so the [-1, 1] model space can be restored), ``convention`` (a
sentence). No object arrays: it loads with ``np.load(path)`` and ``allow_pickle=False``. Uncompressed by
default (writing 17.8M points compressed takes tens of seconds); ``compress=True`` trades time for size.
The file is what ``np.savez`` writes, but written one frame at a time with a cancellation check before each
(:mod:`one4d.progress`), so a cancelled export of a long clip stops within a frame and leaves no file.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import One4DInputError
from ..geometry.inputs import as_colors, as_float_array, as_intrinsics, as_mask, as_poses
from ..progress import check_cancelled, track
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
        _write_npz(tmp, arrays, compress, f"writing {path.name}")
    return path


def _write_npz(path: Path, arrays: dict[str, np.ndarray], compress: bool, stage: str) -> None:
    """``np.savez`` (one ``.npy`` member per array, zip64) frame by frame, checking for a cancel before each."""
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=mode, allowZip64=True) as zf:
        for name, array in track(stage, list(arrays.items())):
            with zf.open(name + ".npy", "w", force_zip64=True) as member:
                if array.ndim == 0:
                    np.lib.format.write_array(member, array, allow_pickle=False)
                    continue
                array = np.ascontiguousarray(array)
                np.lib.format.write_array_header_1_0(member, np.lib.format.header_data_from_array_1_0(array))
                for frame in array:
                    check_cancelled(stage)
                    member.write(frame.tobytes())


def load_npz(path: str | os.PathLike) -> dict[str, Any]:
    """Load a bundle written by :func:`export_npz`; ``normalization`` comes back as a dict."""
    with np.load(path, allow_pickle=False) as z:
        out: dict[str, Any] = {k: z[k] for k in z.files}
    if "normalization_json" in out:
        out["normalization"] = json.loads(str(out.pop("normalization_json")))
    if "convention" in out:
        out["convention"] = str(out["convention"])
    return out
