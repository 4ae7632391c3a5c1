"""Natural photographs for VAE training: short pseudo-videos made by moving a crop window over a photo, so
that the embedded model's VAE reproduces a user's own pictures, not only procedural rooms.

Photos come from a folder, or (``"skimage"``) from the samples that scikit-image installs with its wheel
(public-domain and CC0 pictures; ``pip install 'comfyui-one4d[train]'``). Four of those are held out of
training for evaluation, the ones a new user is most likely to try first: :data:`HELDOUT`. A clip picks a
photo, a square window of random size (from the clip size up to the photo's shorter side), a random start,
a slow random drift of the window over the frames and a random left-right flip; every window is resized to
the clip size with area filtering.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import One4DInputError

HELDOUT = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
SUFFIXES = (".png", ".jpg", ".jpeg")


def photo_files(spec: str, split: str = "train") -> list[Path]:
    """The photos of a folder, or of scikit-image's samples (``"skimage"``): ``train`` leaves :data:`HELDOUT`
    out, ``heldout`` is only those."""
    if spec == "skimage":
        try:
            import skimage
        except ImportError:
            raise One4DInputError("photos 'skimage' need scikit-image: pip install 'comfyui-one4d[train]'.") from None
        folder = Path(skimage.__file__).parent / "data"
    else:
        folder = Path(spec)
        if not folder.is_dir():
            raise One4DInputError(f"photo folder '{spec}' does not exist; give a folder of PNG/JPEG photos, or 'skimage'.")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    chosen = [p for p in files if (p.name in HELDOUT) == (split == "heldout")]
    if not chosen:
        raise One4DInputError(f"no {split} photos in '{folder}' (PNG or JPEG files; held out: {', '.join(HELDOUT)}).")
    return chosen


class PhotoClips:
    """Random pseudo-videos ``[F, S, S, 3]`` uint8 from a list of photos (module docstring)."""

    def __init__(self, files: list[Path], min_side: int = 64):
        self.photos = []
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None and min(img.shape[:2]) >= min_side:
                self.photos.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        if not self.photos:
            raise One4DInputError(f"none of the {len(files)} photos could be read at {min_side} pixels or more.")

    def draw(self, rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
        """One pseudo-video of ``frames`` frames at ``size`` x ``size``."""
        img = self.photos[int(rng.integers(len(self.photos)))]
        h, w = img.shape[:2]
        side = int(rng.integers(size, min(h, w) + 1))
        drift = rng.uniform(-1, 1, 2) * side / 32  # pixels per frame: a slow pan
        start = rng.uniform([0, 0], [h - side, w - side])
        out = np.empty((frames, size, size, 3), np.uint8)
        for t in range(frames):
            y, x = np.clip(start + drift * t, 0, [h - side, w - side]).astype(int)
            out[t] = cv2.resize(img[y : y + side, x : x + side], (size, size), interpolation=cv2.INTER_AREA)
        return out[:, :, ::-1] if rng.random() < 0.5 else out
