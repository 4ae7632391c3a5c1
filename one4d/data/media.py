"""Reading the user's images and videos (opencv) at the model's frame size.

Fitting to the model's aspect ratio (``fit``): ``crop`` cuts the centre (the default), ``pad`` keeps the whole
picture and fills the margins with the mid-gray that stands for "not observed" in the conditioning video
(:mod:`one4d.umc`); either way the image is then resized with area filtering, and what was cut or padded is
said in a note. Images: EXIF orientation is honoured, 16-bit PNGs keep their precision until the resize,
grayscale is repeated to RGB, and an alpha channel is dropped with a note (the model has no transparency).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import One4DInputError

FITS = ("crop", "pad")
PAD_GRAY = 0.5  # the unobserved-frame gray: 0 in the VAE's [-1, 1] input space


def fit_box(h: int, w: int, height: int, width: int, fit: str = "crop") -> tuple[int, int, int, int]:
    """Where a ``h x w`` picture meets the model's aspect ratio ``width / height`` (module docstring), as
    ``(box_h, box_w, top, left)``: with ``crop`` the centre window cut out of the picture, with ``pad`` the
    gray canvas the picture is placed on at ``(top, left)``. Shared by the CLI's readers and the nodes."""
    if fit not in FITS:
        raise One4DInputError(f"fit '{fit}' is unknown; use 'crop' (cut the centre) or 'pad' (keep all, gray margins).")
    target = width / height
    if fit == "crop":
        bh, bw = (h, max(1, int(round(h * target)))) if w / h > target else (max(1, int(round(w / target))), w)
        return bh, bw, (h - bh) // 2, (w - bw) // 2
    bh, bw = max(h, int(round(w / target))), max(w, int(round(h * target)))
    return bh, bw, (bh - h) // 2, (bw - w) // 2


def fit_note(h: int, w: int, height: int, width: int, fit: str) -> str | None:
    """The sentence that says what fitting did to a ``h x w`` picture, or None when it kept it whole."""
    bh, bw, _, _ = fit_box(h, w, height, width, fit)
    if (bh, bw) == (h, w):
        return None
    what = f"cropped to its centre {bw}x{bh}" if fit == "crop" else f"padded with gray to {bw}x{bh}"
    other = "fit 'pad' keeps all of it" if fit == "crop" else "fit 'crop' fills the frame"
    return f"the {w}x{h} picture was {what} to match the model's {width}x{height} ({other})."


def _fit(img: np.ndarray, height: int, width: int, fit: str = "crop", notes: list[str] | None = None) -> np.ndarray:
    """``[h, w, 3]`` float32 in [0, 1] -> ``[height, width, 3]`` (module docstring); appends a note when the
    picture had to be cut or padded."""
    h, w = img.shape[:2]
    bh, bw, top, left = fit_box(h, w, height, width, fit)
    if fit == "crop":
        img = img[top : top + bh, left : left + bw]
    else:
        canvas = np.full((bh, bw, 3), PAD_GRAY, np.float32)
        canvas[top : top + h, left : left + w] = img
        img = canvas
    note = fit_note(h, w, height, width, fit)
    if notes is not None and note:
        notes.append(note)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def read_image(path: str | Path, height: int, width: int, fit: str = "crop", notes: list[str] | None = None) -> np.ndarray:
    """An RGB image as ``[H, W, 3]`` float32 in [0, 1], fitted to the model size (module docstring); notes on
    what was changed (alpha dropped, cropped, padded) are appended to ``notes``."""
    flags = cv2.IMREAD_COLOR | cv2.IMREAD_ANYDEPTH  # EXIF orientation applied, gray -> RGB, 16 bits kept
    img = cv2.imread(str(path), flags)
    if img is None:
        raise One4DInputError(f"cannot read image '{path}'; give a PNG or JPEG file.")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if notes is not None and raw is not None and raw.ndim == 3 and raw.shape[2] == 4:
        notes.append(f"'{Path(path).name}' has an alpha channel; it was dropped (the model sees the colour only).")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / scale
    return _fit(rgb, height, width, fit, notes)


def read_video(path: str | Path, height: int, width: int, max_frames: int) -> np.ndarray:
    """Up to ``max_frames`` frames ``[F, H, W, 3]`` float32 in [0, 1] from a video file."""
    return read_video_clip(path, height, width, max_frames=max_frames)[0]


def read_video_clip(path: str | Path, height: int, width: int, stride: int = 1, max_frames: int | None = None,
                    fit: str = "crop", notes: list[str] | None = None) -> tuple[np.ndarray, int]:
    """Frames 0, ``stride``, 2 ``stride``, ... of a video file (at most ``max_frames`` of them) as ``[F, H, W, 3]``
    float32 in [0, 1] fitted like images (one note for the clip), and how many frames the file has (so callers
    can say which frames were left out)."""
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
            frames.append(_fit(cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0, height, width, fit,
                               notes if not frames else None))
        total += 1
    cap.release()
    if not frames:
        raise One4DInputError(f"cannot read frames from video '{path}'; give an MP4/AVI file opencv can decode.")
    return np.stack(frames).astype(np.float32), total
