"""Real 4D clips on disk: one record type for every layout, and the pack's own clip folder format.

Every reader (the clip folder here, the public datasets in :mod:`one4d.data.datasets`) returns a
:class:`ClipSequence`: the frame files of one sequence with its cameras already converted to the library's
conventions, read lazily. ``sequence.read(indices)`` loads the chosen frames as a :class:`ClipRecord`:

* ``rgb [F, H, W, 3]`` uint8; ``depth [F, H, W]`` float32 z-depth in metres (0 where invalid);
  ``valid [F, H, W]`` bool (False on missing depth, sky, and where a mask says so);
* ``K [F, 3, 3]`` in pixels, OpenCV pixel centers (pixel ``(u, v)`` = column, row at integer coordinates);
* ``c2w [F, 4, 4]`` camera-to-world, OpenCV camera axes (x right, y down, z forward), in the dataset's world;
* ``caption`` and ``source`` (a name such as ``tartanair/abandonedfactory/Easy/P000``).

Clip folder format (docs/data.md, "Real 4D data"): ``clip.json`` with the caption, depth units and scale,
intrinsics and camera-to-world poses (OpenCV, or OpenGL converted on reading); ``rgb/`` frames (PNG/JPEG) or
``rgb.mp4``; ``depth/`` one file per frame (16-bit PNG with a stated scale, ``.npy`` or EXR); optional
``mask/`` PNGs (0 = invalid or sky). Frames pair by file name stem; every count must agree, and a missing or
extra file is named in the error.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from ..errors import One4DInputError
from ..geometry.inputs import as_intrinsics, as_poses
from .depth_files import metres_per_unit, read_exr, read_npy, read_png16

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DEPTH_SUFFIXES = (".png", ".npy", ".exr")
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])  # camera axes: flip y (up -> down) and z (back -> forward)
DepthDecoder = Callable[[Path], tuple[np.ndarray, np.ndarray]]  # file -> (metres float32, valid bool)


@dataclass
class ClipRecord:
    """Frames of one clip read from disk, in the library's conventions (module docstring)."""

    rgb: np.ndarray  # [F, H, W, 3] uint8
    depth: np.ndarray  # [F, H, W] float32 z-depth in metres, 0 where invalid
    valid: np.ndarray  # [F, H, W] bool
    K: np.ndarray  # [F, 3, 3] float64, pixels
    c2w: np.ndarray  # [F, 4, 4] float64 camera-to-world, OpenCV camera axes
    caption: str
    source: str
    frames: np.ndarray  # [F] int64: the frame numbers in the sequence


@dataclass(frozen=True, eq=False)
class ClipSequence:
    """One sequence on disk: frame files, a depth decoder and the cameras (OpenCV), read on demand."""

    source: str
    caption: str
    rgb: tuple[Path, ...] | Path  # frame files, or one video file
    depth: tuple[Path, ...]
    decode_depth: DepthDecoder
    K: np.ndarray  # [N, 3, 3] float64
    c2w: np.ndarray  # [N, 4, 4] float64
    masks: tuple[Path, ...] | None = None  # nonzero = valid

    def __len__(self) -> int:
        return len(self.depth)

    def read(self, indices: Sequence[int] | None = None) -> ClipRecord:
        """Load frames ``indices`` (all by default) as a :class:`ClipRecord`."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(self):
            raise One4DInputError(f"{self.source}: frames {idx.tolist()} are outside its {len(self)} frames.")
        rgb = read_video_frames(self.rgb, idx) if isinstance(self.rgb, Path) else read_image_frames(self.rgb, idx)
        depth, valid = map(np.stack, zip(*(self._depth(i, rgb.shape[1:3]) for i in idx)))
        if self.masks is not None:
            valid &= np.stack([read_mask(self.masks[i], depth.shape[1:]) for i in idx])
        valid &= np.isfinite(depth) & (depth > 0)
        return ClipRecord(rgb, np.where(valid, depth, 0.0).astype(np.float32), valid, self.K[idx], self.c2w[idx],
                          self.caption, self.source, idx)

    def _depth(self, i: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``i``'s decoded depth and validity, checked to be pixel-aligned with frames of ``shape``."""
        depth, valid = self.decode_depth(self.depth[i])
        if depth.shape != tuple(shape):
            raise One4DInputError(
                f"{self.source}: frames are {shape[1]}x{shape[0]} but depth file '{self.depth[i]}' is "
                f"{depth.shape[1]}x{depth.shape[0]} (width x height); depth must be pixel-aligned with the frames."
            )
        return depth, valid


def natural_key(path: Path) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_files(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """The files of ``folder`` with one of ``suffixes``, in natural order; an error if there are none."""
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in suffixes), key=natural_key) if folder.is_dir() else []
    if not files:
        raise One4DInputError(f"no {what} in '{folder}': expected {'/'.join(suffixes)} files there.")
    return files


def paired_files(frames: Sequence[Path], folder: Path, name_of: Callable[[str], str], what: str, fix: str) -> tuple[Path, ...]:
    """For each frame file, the file ``folder / name_of(frame stem)``; the first missing one is named."""
    paired = tuple(folder / name_of(f.stem) for f in frames)
    for frame, path in zip(frames, paired):
        if not path.is_file():
            raise One4DInputError(f"missing {what} file '{path}' for frame '{frame}'; {fix}")
    return paired


def check_count(what: str, count: int, frames: int, where: object, fix: str) -> None:
    """Raise unless ``count`` (of cameras, files, ...) equals the sequence's ``frames``."""
    if count != frames:
        raise One4DInputError(f"{where}: {count} {what} for {frames} frames; {fix}")


def read_image_frames(files: Sequence[Path], indices: np.ndarray) -> np.ndarray:
    """RGB frames ``[F, H, W, 3]`` uint8 from image files."""
    out = []
    for i in indices:
        img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise One4DInputError(f"cannot read frame '{files[i]}'; it is missing or not a PNG/JPEG image.")
        if out and img.shape != out[0].shape:
            raise One4DInputError(f"frame '{files[i]}' is {img.shape[1]}x{img.shape[0]}, unlike the clip's first frame.")
        out.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    return np.stack(out)


def count_video_frames(path: Path) -> int:
    """How many frames OpenCV decodes from a video file (0 if it cannot open it)."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.grab():
        count += 1
    cap.release()
    return count


def read_video_frames(path: Path, indices: np.ndarray) -> np.ndarray:
    """RGB frames ``[F, H, W, 3]`` uint8 at ``indices`` of a video file (decoding stops after the last one)."""
    wanted, frames = {int(i) for i in indices}, {}
    cap = cv2.VideoCapture(str(path))
    n = 0
    while n <= max(wanted) and cap.grab():
        if n in wanted:
            ok, img = cap.retrieve()
            if ok:
                frames[n] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    missing = sorted(wanted - frames.keys())
    if missing:
        raise One4DInputError(f"cannot decode frame {missing[0]} of video '{path}'; re-encode it as H.264 MP4.")
    return np.stack([frames[int(i)] for i in indices])


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A validity mask ``[H, W]`` bool from an image (nonzero = valid)."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise One4DInputError(f"cannot read mask '{path}'; it is missing or not an image.")
    img = img if img.ndim == 2 else img[..., 0]
    if img.shape != tuple(shape):
        raise One4DInputError(f"mask '{path}' is {img.shape[1]}x{img.shape[0]}; the frames are {shape[1]}x{shape[0]}.")
    return img > 0


def rigid_poses(c2w: object, where: object) -> np.ndarray:
    """Check ``[N, 4, 4]`` rigid, right-handed camera-to-world matrices and return them as float64."""
    c2w = as_poses(c2w, name=f"poses in {where}")
    R = c2w[:, :3, :3]
    bad = np.abs(R @ R.transpose(0, 2, 1) - np.eye(3)).max((1, 2)) > 1e-3
    bad |= np.abs(np.linalg.det(R) - 1.0) > 1e-3
    bad |= np.abs(c2w[:, 3] - [0.0, 0.0, 0.0, 1.0]).max(1) > 1e-9
    if bad.any():
        raise One4DInputError(
            f"{where}: pose {int(np.argmax(bad))} is not a rigid right-handed transform (rotation with det +1, last "
            "row 0 0 0 1); give camera-to-world matrices."
        )
    return c2w


def read_number_table(path: Path, columns: int, header: bool) -> np.ndarray:
    """A whitespace-separated table of numbers ``[rows, columns]`` from a dataset's text file."""
    if not path.is_file():
        raise One4DInputError(f"missing camera file '{path}'; extract the dataset's camera files next to the frames.")
    try:
        table = np.loadtxt(path, skiprows=int(header), ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise One4DInputError(f"'{path}' is not a table of numbers ({exc}).") from exc
    if table.shape[1] != columns:
        raise One4DInputError(f"'{path}' has {table.shape[1]} columns per row; its format has {columns}.")
    return table


def dataset_caption(folder: Path, caption: str | None) -> str:
    """A sequence's caption: the one given, else ``caption.txt`` in its folder, else empty."""
    if caption is not None:
        return caption
    path = folder / "caption.txt"
    return path.read_text().strip() if path.is_file() else ""


def decode_folder_depth(path: Path, scale: float | None, metres: float) -> tuple[np.ndarray, np.ndarray]:
    """Depth of a clip-folder file in metres: ``stored * scale * metres`` (module docstring); 0 = invalid."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        if scale is None:
            raise One4DInputError(
                f"'{path}' is a 16-bit PNG but clip.json states no 'depth_scale'; add it (depth units per count, "
                "e.g. 1 for PNGs that store millimetres with depth_units 'mm')."
            )
        raw = read_png16(path).astype(np.float32)
    else:
        raw = read_npy(path) if suffix == ".npy" else read_exr(path)
    depth = raw * np.float32((1.0 if scale is None else scale) * metres)
    return depth, np.isfinite(depth) & (depth > 0)


def read_clip_meta(folder: Path) -> dict:
    """The parsed ``clip.json`` of a clip folder."""
    path = folder / "clip.json"
    if not path.is_file():
        raise One4DInputError(f"'{folder}' has no clip.json; a clip folder needs one (docs/data.md, 'Real 4D data').")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise One4DInputError(f"'{path}' is not valid JSON ({exc}).") from exc
    missing = [k for k in ("depth_units", "K", "c2w") if k not in meta]
    if missing:
        raise One4DInputError(f"'{path}' lacks {', '.join(map(repr, missing))}; see docs/data.md, 'Real 4D data'.")
    return meta


def folder_caption(folder: Path, meta: dict) -> str:
    """The caption from clip.json, else from caption.txt."""
    if "caption" in meta:
        return str(meta["caption"])
    if (folder / "caption.txt").is_file():
        return (folder / "caption.txt").read_text().strip()
    raise One4DInputError(f"'{folder}' has no caption: add \"caption\" to clip.json or write caption.txt (may be empty).")


def folder_poses(meta: dict, frames: int, where: Path) -> np.ndarray:
    """clip.json's camera-to-world poses as OpenCV ``[N, 4, 4]`` (OpenGL ones converted)."""
    convention = meta.get("pose_convention", "opencv")
    if convention not in ("opencv", "opengl"):
        raise One4DInputError(f"{where}: unknown pose_convention {convention!r}; use 'opencv' or 'opengl'.")
    c2w = rigid_poses(meta["c2w"], where)
    check_count("poses", len(c2w), frames, where, "give one camera-to-world matrix per frame.")
    return c2w @ OPENGL_TO_OPENCV if convention == "opengl" else c2w


def read_clip_folder(folder: str | Path) -> ClipSequence:
    """Open a clip folder (module docstring) as a :class:`ClipSequence`."""
    folder = Path(folder)
    meta = read_clip_meta(folder)
    where = folder / "clip.json"
    metres = metres_per_unit(meta["depth_units"], str(where))
    scale = meta.get("depth_scale")
    if scale is not None and not (isinstance(scale, (int, float)) and scale > 0):
        raise One4DInputError(f"{where}: depth_scale must be a positive number, got {scale!r}.")
    depth_files = list_files(folder / "depth", DEPTH_SUFFIXES, "depth files")
    suffix = depth_files[0].suffix
    if any(p.suffix != suffix for p in depth_files):
        raise One4DInputError(f"'{folder / 'depth'}' mixes depth formats; keep one of {'/'.join(DEPTH_SUFFIXES)}.")
    video = folder / "rgb.mp4"
    if video.is_file():
        rgb: tuple[Path, ...] | Path = video
        check_count("depth files", len(depth_files), count_video_frames(video), video,
                    "give one depth file per video frame.")
        depth = tuple(depth_files)
    else:
        rgb = tuple(list_files(folder / "rgb", IMAGE_SUFFIXES, "RGB frames (or rgb.mp4)"))
        depth = paired_files(rgb, folder / "depth", lambda stem: stem + suffix, "depth",
                             f"write it, or remove the frame from rgb/ (depth files are {suffix}).")
        check_count("depth files", len(depth_files), len(rgb), folder / "depth", "remove depth files without a frame.")
    masks = None
    if (folder / "mask").is_dir():
        masks = paired_files(depth, folder / "mask", lambda stem: stem + ".png", "mask",
                             "write it (0 = invalid, nonzero = valid) or remove the mask folder.")
    return ClipSequence(
        source=f"folder/{folder.name}",
        caption=folder_caption(folder, meta),
        rgb=rgb,
        depth=depth,
        decode_depth=partial(decode_folder_depth, scale=scale, metres=metres),
        K=as_intrinsics(meta["K"], len(depth), f"K in {where}"),
        c2w=folder_poses(meta, len(depth), where),
        masks=masks,
    )
