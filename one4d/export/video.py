"""Writing RGB videos (MP4) and PNG images, atomically."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import One4DInputError
from ..progress import track
from .atomic import atomic_path, write_bytes_atomic


def write_video(path: str | Path, frames: np.ndarray, fps: float = 8.0) -> Path:
    """Write ``[F, H, W, 3]`` float [0, 1] frames as MP4 (mp4v), atomically."""
    path = Path(path)
    h, w = frames.shape[1:3]
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        for f in track("writing the video", frames):
            writer.write(cv2.cvtColor((np.clip(f, 0, 1) * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
        writer.release()
    return path


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image as PNG atomically."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise One4DInputError(f"could not encode PNG for '{Path(path).name}'.")
    return write_bytes_atomic(path, buf.tobytes())
