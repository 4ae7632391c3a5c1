"""Readers for the native on-disk layouts of public 4D datasets, and the pack's clip folder.

Each reader opens one sequence folder as a :class:`one4d.data.clips.ClipSequence` in the library's
conventions (depth in metres, OpenCV intrinsics and camera-to-world poses); each module's docstring states the
dataset's license, layout, depth encoding, camera convention and the conversion applied. Nothing here
downloads data: point a reader at a copy you obtained under the dataset's license.

| kind | dataset | license | reader |
|---|---|---|---|
| ``folder`` | a clip folder (docs/data.md) | yours | :func:`one4d.data.clips.read_clip_folder` |
| ``pointodyssey`` | PointOdyssey | CC BY-NC-SA 4.0 | :func:`read_pointodyssey` |
| ``tartanair`` | TartanAir v1 | CC BY 4.0 | :func:`read_tartanair` |
| ``vkitti2`` | Virtual KITTI 2 | CC BY-NC-SA 3.0 | :func:`read_vkitti2` |
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ...errors import One4DInputError
from ..clips import ClipSequence, read_clip_folder
from . import pointodyssey, tartanair, vkitti2
from .pointodyssey import read_pointodyssey
from .tartanair import read_tartanair
from .vkitti2 import read_vkitti2

READERS: dict[str, Callable[..., ClipSequence]] = {
    "folder": read_clip_folder,
    "pointodyssey": read_pointodyssey,
    "tartanair": read_tartanair,
    "vkitti2": read_vkitti2,
}
MARKERS = {"folder": "clip.json", "pointodyssey": pointodyssey.MARKER, "tartanair": tartanair.MARKER,
           "vkitti2": vkitti2.MARKER}
"""The file that marks a sequence folder of each kind."""


def _check_kind(kind: str) -> None:
    if kind not in READERS:
        raise One4DInputError(f"unknown dataset kind {kind!r}; use one of {', '.join(READERS)}.")


def open_sequence(kind: str, folder: str | Path) -> ClipSequence:
    """Open one sequence folder of a dataset ``kind`` (see the table above) with its reader's defaults."""
    _check_kind(kind)
    return READERS[kind](folder)


def find_sequences(kind: str, root: str | Path) -> list[Path]:
    """Every sequence folder of ``kind`` at or below ``root`` (folders holding its marker file), sorted."""
    _check_kind(kind)
    root = Path(root)
    if not root.is_dir():
        raise One4DInputError(f"dataset root '{root}' is not a folder.")
    return sorted(Path(d) for d, _, files in os.walk(root) if MARKERS[kind] in files)


__all__ = ["MARKERS", "READERS", "find_sequences", "open_sequence", "read_clip_folder", "read_pointodyssey",
           "read_tartanair", "read_vkitti2"]
