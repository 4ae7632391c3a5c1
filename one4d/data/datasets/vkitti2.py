"""Virtual KITTI 2 (Cabon, Murray, Humenberger; 2020): Unity re-creations of five KITTI driving sequences under
ten variations (clone, fog, rain, sunset, rotated cameras, ...), with moving cars; a stereo rig. Peers (MonST3R,
CUT3R) train on it.

* License: CC BY-NC-SA 3.0 (non-commercial, share-alike).
* Layout: extract the rgb, depth and textgt archives into one folder; one sequence is ``SceneXX/<variation>``::

    frames/rgb/Camera_0/rgb_00000.jpg ...        RGB frames, 1242 x 375
    frames/depth/Camera_0/depth_00000.png ...    depth, 16-bit PNG
    intrinsic.txt    header, then "frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]" per frame and camera
    extrinsic.txt    header, then "frame cameraID r1,1 r1,2 r1,3 t1 ... r3,3 t3 0 0 0 1" (a 4 x 4 row by row)
    (Camera_1, the right camera, alike; classSegmentation/, forwardFlow/, ...: not used here)

* Depth: z-depth to the camera plane in centimetres, ``metres = code / 100``; the far plane is 655.35 m, and
  code 65535 (the sky) is treated as sky. Code 0 is invalid.
* Cameras: K in pixels; the extrinsic matrix is world-to-camera with OpenCV axes (x right, y down,
  z forward). Conversion: ``c2w = inv(extrinsic)``.
* Captions: none ship with the dataset; ``caption.txt`` in the variation folder is used if present.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import One4DInputError
from ..clips import ClipSequence, check_count, dataset_caption, list_files, paired_files, read_number_table, rigid_poses
from ..depth_files import read_png16

MARKER = "extrinsic.txt"
METRES_PER_CODE = 0.01
SKY_CODE = 65535


def decode_depth(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A Virtual KITTI 2 depth PNG in metres, with its validity (code 0 and the sky code are invalid)."""
    codes = read_png16(path)
    return codes.astype(np.float32) * np.float32(METRES_PER_CODE), (codes > 0) & (codes < SKY_CODE)


def frame_number(path: Path) -> int:
    """The frame number of a file named like ``rgb_00012.jpg``."""
    digits = path.stem.rsplit("_", 1)[-1]
    if not digits.isdigit():
        raise One4DInputError(f"'{path}' is not named like rgb_00012.jpg; Virtual KITTI 2 frames carry their number.")
    return int(digits)


def camera_rows(path: Path, columns: int, camera: int, frames: list[int]) -> np.ndarray:
    """The rows of one camera of a Virtual KITTI 2 camera file, in the order of ``frames`` (its frame numbers)."""
    table = read_number_table(path, columns, header=True)
    rows = {int(r[0]): r[2:] for r in table if int(r[1]) == camera}
    check_count(f"rows of camera {camera}", len(rows), len(frames), path,
                "the camera files and the frame folder do not belong together.")
    missing = [f for f in frames if f not in rows]
    if missing:
        raise One4DInputError(f"'{path}' has no row for frame {missing[0]} of camera {camera}.")
    return np.stack([rows[f] for f in frames])


def read_vkitti2(folder: str | Path, camera: int = 0, caption: str | None = None) -> ClipSequence:
    """Open one Virtual KITTI 2 sequence ``SceneXX/<variation>`` (module docstring) for camera 0 or 1."""
    if camera not in (0, 1):
        raise One4DInputError(f"Virtual KITTI 2 camera {camera!r}; use 0 (left) or 1 (right).")
    folder = Path(folder)
    rgb = tuple(list_files(folder / "frames" / "rgb" / f"Camera_{camera}", (".jpg", ".png"), "RGB frames"))
    depth = paired_files(rgb, folder / "frames" / "depth" / f"Camera_{camera}",
                         lambda stem: stem.replace("rgb_", "depth_", 1) + ".png", "depth",
                         "extract the depth archive into the same folder as the rgb one.")
    frames = [frame_number(p) for p in rgb]
    fx, fy, cx, cy = camera_rows(folder / "intrinsic.txt", 6, camera, frames).T
    K = np.zeros((len(frames), 3, 3))
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = fx, fy, cx, cy, 1.0
    w2c = camera_rows(folder / MARKER, 18, camera, frames).reshape(-1, 4, 4)
    name = f"{folder.parent.name}/{folder.name}/Camera_{camera}"
    return ClipSequence(f"vkitti2/{name}", dataset_caption(folder, caption), rgb, depth, decode_depth, K,
                        rigid_poses(np.linalg.inv(w2c), folder / MARKER))
