"""PointOdyssey (Zheng, Harley, Shen, Wetzstein, Guibas; ICCV 2023): long synthetic videos of people, animals and
objects moving in indoor and outdoor scenes, rendered in Blender. One of the paper's training sets.

* License: the data is CC BY-NC-SA 4.0 (non-commercial, share-alike); the generation code is MIT.
* Layout, one sequence folder (e.g. ``train/ani``)::

    rgbs/rgb_00000.jpg ...         RGB frames
    depths/depth_00000.png ...     depth, 16-bit PNG
    anno.npz                       intrinsics [N, 3, 3], extrinsics [N, 4, 4] (+ point tracks, not used here)
    masks/, normals/, info.npz     not used here

* Depth: z-depth, ``metres = code / 65535 * 1000`` (one code is 1.53 cm); code 0 is invalid, and code 65535
  (1000 m or more, saturated) is treated as sky.
* Cameras: ``intrinsics`` in pixels; ``extrinsics`` world-to-camera with OpenCV axes (x right, y down,
  z forward): the dataset's own tracks project as ``pixel ~ K (E X)``. Conversion: ``c2w = inv(extrinsics)``.
* Captions: none ship with the dataset; ``caption.txt`` in the sequence folder is used if present.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import One4DInputError
from ..clips import ClipSequence, check_count, dataset_caption, list_files, paired_files, rigid_poses
from ..depth_files import read_png16

MARKER = "anno.npz"
METRES_PER_CODE = 1000.0 / 65535.0
SKY_CODE = 65535


def decode_depth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A PointOdyssey depth PNG in metres, with its validity (code 0 and the saturated sky code are invalid)."""
    codes = read_png16(path)
    return codes.astype(np.float32) * np.float32(METRES_PER_CODE), (codes > 0) & (codes < SKY_CODE)


def read_cameras(path: Path, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``K [N, 3, 3]`` and OpenCV ``c2w [N, 4, 4]`` from a sequence's ``anno.npz``."""
    if not path.is_file():
        raise One4DInputError(f"missing '{path}'; a PointOdyssey sequence keeps its cameras there.")
    with np.load(path, allow_pickle=False) as anno:
        missing = [k for k in ("intrinsics", "extrinsics") if k not in anno.files]
        if missing:
            raise One4DInputError(f"'{path}' lacks {', '.join(missing)}; re-download the sequence's annotations.")
        K, w2c = anno["intrinsics"].astype(np.float64), anno["extrinsics"].astype(np.float64)
    check_count("intrinsics", len(K), frames, path, "the annotations and rgbs/ do not belong together.")
    check_count("extrinsics", len(w2c), frames, path, "the annotations and rgbs/ do not belong together.")
    return K, rigid_poses(np.linalg.inv(w2c), path)


def read_pointodyssey(folder: str | Path, caption: str | None = None) -> ClipSequence:
    """Open one PointOdyssey sequence folder (module docstring) as a :class:`ClipSequence`."""
    folder = Path(folder)
    rgb = tuple(list_files(folder / "rgbs", (".jpg", ".png"), "RGB frames"))
    depth = paired_files(rgb, folder / "depths", lambda stem: stem.replace("rgb_", "depth_", 1) + ".png", "depth",
                         "extract the sequence's depths/ folder completely.")
    K, c2w = read_cameras(folder / MARKER, len(rgb))
    return ClipSequence(f"pointodyssey/{folder.parent.name}/{folder.name}", dataset_caption(folder, caption),
                        rgb, depth, decode_depth, K, c2w)
