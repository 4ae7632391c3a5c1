"""Reading per-frame depth files as they are stored on disk: 16-bit PNG, ``.npy`` and EXR.

These functions return the stored numbers, untouched; what they mean (units, scale, which code marks sky)
is decided by the reader of each layout (:mod:`one4d.data.clips`, :mod:`one4d.data.datasets`).

EXR goes through OpenCV, which decodes it only when it was built with OpenEXR and the environment variable
``OPENCV_IO_ENABLE_OPENEXR=1`` was set before its EXR codec was first used. The library never sets that
switch itself (it exists because reading untrusted EXR files was a security risk, see
:mod:`one4d.export.depth`): where it is off, reading an EXR raises :class:`One4DInputError` saying so.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import One4DInputError

METRES_PER_UNIT = {"m": 1.0, "cm": 0.01, "mm": 0.001}
"""Depth units a clip may state, and how many metres one of each is."""


def metres_per_unit(units: object, where: str) -> float:
    """Metres per depth unit for a unit name (``m``, ``cm``, ``mm``); ``where`` names the file that states it."""
    if units not in METRES_PER_UNIT:
        raise One4DInputError(
            f"{where}: unknown depth units {units!r}; state one of {', '.join(map(repr, METRES_PER_UNIT))}."
        )
    return METRES_PER_UNIT[units]


def read_png16(path: Path) -> np.ndarray:
    """The raw codes ``[H, W]`` uint16 of a single-channel 16-bit PNG depth file."""
    codes = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if codes is None:
        raise One4DInputError(f"cannot read depth file '{path}'; it is missing or not a PNG image.")
    if codes.dtype != np.uint16 or codes.ndim != 2:
        raise One4DInputError(
            f"depth file '{path}' is a {codes.dtype} image with shape {codes.shape}; depth PNGs must be "
            "single-channel 16-bit (uint16)."
        )
    return codes


def read_npy(path: Path) -> np.ndarray:
    """A float ``[H, W]`` depth array from a ``.npy`` file (no pickled objects)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise One4DInputError(f"cannot read depth file '{path}' ({exc}); it is missing or not a .npy array.") from exc
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise One4DInputError(f"depth file '{path}' holds a {arr.dtype} array of shape {arr.shape}; expected [H, W] numbers.")
    return arr.astype(np.float32)


def read_exr(path: Path) -> np.ndarray:
    """A float32 ``[H, W]`` depth map from an EXR file (its first channel)."""
    if not Path(path).is_file():
        raise One4DInputError(f"cannot read depth file '{path}': it does not exist.")
    try:
        arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        arr = None
    if arr is None:
        raise One4DInputError(
            f"cannot read EXR depth file '{path}': this OpenCV cannot decode EXR (it needs OpenEXR support and "
            "the environment variable OPENCV_IO_ENABLE_OPENEXR=1 set before OpenCV is first used). Set it and "
            "restart, or convert the depth to .npy or 16-bit PNG."
        )
    return (arr if arr.ndim == 2 else arr[..., 0]).astype(np.float32)
