"""Reading the user's images and videos (opencv) at the model's frame size.

Resizing policy: center-crop to the target aspect ratio, then resize with area filtering.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import One4DInputError


def _fit(img: np.ndarray, height: int, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    target = width / height
    if w / h > target:
        nw = int(round(h * target))
        img = img[:, (w - nw) // 2 : (w - nw) // 2 + nw]
    else:
        nh = int(round(w / target))
        img = img[(h - nh) // 2 : (h - nh) // 2 + nh]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def read_image(path: str | Path, height: int, width: int) -> np.ndarray:
    """An RGB image as ``[H, W, 3]`` float32 in [0, 1], cropped and resized to the model size."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise One4DInputError(f"cannot read image '{path}'; give a PNG or JPEG file.")
    return _fit(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), height, width).astype(np.float32) / 255.0


def read_video(path: str | Path, height: int, width: int, max_frames: int) -> np.ndarray:
    """Up to ``max_frames`` frames ``[F, H, W, 3]`` float32 in [0, 1] from a video file."""
    return read_video_clip(path, height, width, max_frames=max_frames)[0]


def read_video_clip(path: str | Path, height: int, width: int, stride: int = 1,
                    max_frames: int | None = None) -> tuple[np.ndarray, int]:
    """Frames 0, ``stride``, 2 ``stride``, ... of a video file (at most ``max_frames`` of them) as ``[F, H, W, 3]``
    float32 in [0, 1], and how many frames the file has (so callers can say which frames were left out)."""
    if stride < 1 or (max_frames is not None and max_frames < 1):
        raise One4DInputError(f"stride {stride} and max frames {max_frames} must be at least 1.")
    cap = cv2.VideoCapture(str(path))
    frames = []
    total = 0
    while cap.grab():  # grab every frame (to count them), decode only the kept ones
        if total % stride == 0 and (max_frames is None or len(frames) < max_frames):
            ok, img = cap.retrieve()
            if not ok:
                break
            frames.append(_fit(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), height, width))
        total += 1
    cap.release()
    if not frames:
        raise One4DInputError(f"cannot read frames from video '{path}'; give an MP4/AVI file opencv can decode.")
    return np.stack(frames).astype(np.float32) / 255.0, total
