"""TartanAir (Wang et al., IROS 2020): camera flights through photo-realistic Unreal Engine environments (AirSim),
static scenes with aggressive motion. One of the paper's training sets. This reads TartanAir v1's layout.

* License: CC BY 4.0 (the tools repository is BSD).
* Layout, one trajectory folder (``<env>/Easy/P000`` or ``<env>/Hard/P001``)::

    image_left/000000_left.png ...         RGB frames, 640 x 480
    depth_left/000000_left_depth.npy ...   depth, float32 [H, W]
    pose_left.txt                          one line per frame: tx ty tz qx qy qz qw
    (the same with ``right`` for the right camera; flow/, seg_*: not used here)

* Depth: z-depth in metres (the dataset's disparity is ``80 / depth`` = fx x baseline / depth). The sky sphere
  has huge depths (about 10,000): depths of ``sky_depth`` (1000 m) or more are treated as sky.
* Intrinsics: not stored per file; every camera is a 90 degree pinhole with ``fx = fy = 320, cx = 320,
  cy = 240`` at 640 x 480, i.e. ``fx = fy = cx = W / 2, cy = H / 2``, which is what this reader uses.
* Poses: camera-to-world, the camera's body frame in NED axes (x forward, y right, z down) in an NED world.
  Conversion to OpenCV axes (x right, y down, z forward): ``c2w = T_ned @ M`` with ``M`` the axis permutation
  whose columns are the OpenCV x, y, z axes in body coordinates: (0, 1, 0), (0, 0, 1), (1, 0, 0). The world
  stays NED (any world works: clips are re-anchored to their first camera).
* Captions: none ship with the dataset; ``caption.txt`` in the trajectory folder is used if present.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ...errors import One4DInputError
from ..clips import ClipSequence, check_count, dataset_caption, list_files, paired_files, read_number_table, rigid_poses
from ..depth_files import read_npy

MARKER = "pose_left.txt"
SKY_DEPTH = 1000.0
BODY_FROM_OPENCV = np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])


def decode_depth(path: Path, sky_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """A TartanAir depth file in metres, with its validity (non-positive, non-finite and sky depths are invalid)."""
    d = read_npy(path)
    return d, np.isfinite(d) & (d > 0) & (d < sky_depth)


def tartanair_intrinsics(height: int, width: int) -> np.ndarray:
    """TartanAir's 90 degree pinhole ``K [3, 3]``: ``fx = fy = cx = W / 2``, ``cy = H / 2`` (320, 320, 240 at 640 x 480)."""
    f = width / 2.0
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[N, 3, 3]`` of quaternions ``[N, 4]`` ordered x, y, z, w (normalized first)."""
    x, y, z, w = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def opencv_poses(table: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world ``[N, 4, 4]`` from TartanAir pose rows ``tx ty tz qx qy qz qw`` (NED body axes)."""
    T = np.tile(np.eye(4), (len(table), 1, 1))
    T[:, :3, :3] = quaternion_matrix(table[:, 3:7])
    T[:, :3, 3] = table[:, :3]
    return T @ BODY_FROM_OPENCV


def read_tartanair(folder: str | Path, camera: str = "left", caption: str | None = None,
                   sky_depth: float = SKY_DEPTH) -> ClipSequence:
    """Open one TartanAir trajectory folder (module docstring) for the ``left`` or ``right`` camera."""
    if camera not in ("left", "right"):
        raise One4DInputError(f"TartanAir camera {camera!r}; use 'left' or 'right'.")
    folder = Path(folder)
    rgb = tuple(list_files(folder / f"image_{camera}", (".png",), "RGB frames"))
    depth = paired_files(rgb, folder / f"depth_{camera}", lambda stem: f"{stem}_depth.npy", "depth",
                         f"extract the trajectory's depth_{camera} archive into it.")
    pose_file = folder / f"pose_{camera}.txt"
    table = read_number_table(pose_file, 7, header=False)
    check_count("poses", len(table), len(rgb), pose_file, f"pose_{camera}.txt and image_{camera}/ do not belong together.")
    first = cv2.imread(str(rgb[0]), cv2.IMREAD_COLOR)
    if first is None:
        raise One4DInputError(f"cannot read frame '{rgb[0]}'; it is missing or not a PNG image.")
    K = np.broadcast_to(tartanair_intrinsics(*first.shape[:2]), (len(rgb), 3, 3)).copy()
    name = "/".join(folder.parts[-3:])
    return ClipSequence(f"tartanair/{name}/{camera}", dataset_caption(folder, caption), rgb, depth,
                        partial(decode_depth, sky_depth=sky_depth), K, rigid_poses(opencv_poses(table), pose_file))
