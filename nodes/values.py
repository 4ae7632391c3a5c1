"""Values that travel on the pack's custom socket types.

``ONE4D_MODEL`` -> :class:`nodes.handle.One4DHandle`; ``ONE4D_COND`` -> :class:`CondData`;
``POINTMAP`` -> :class:`PointmapData`; ``CAMERAS`` -> :class:`CameraData`. RGB and pointmap latents travel as
core ``LATENT`` dicts: ``samples`` holds raw Wan-VAE latents (like every core LATENT: core VAE Decode with the
Wan 2.1 VAE decodes the RGB one) and ``one4d`` holds what the decoder needs (:func:`latent_meta`).

All arrays are numpy, frames first: pointmaps ``[F, H, W, 3]`` in OpenCV camera axes, world = camera of frame 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from one4d.umc import Conditioning

MODEL = "ONE4D_MODEL"
COND = "ONE4D_COND"
POINTMAP = "POINTMAP"
CAMERAS = "CAMERAS"


@dataclass
class CondData:
    """A built UMC conditioning plus what the later nodes report (task mode, observed frames)."""

    cond: Conditioning
    mode: str  # text | image | sparse | video
    frames: Optional[np.ndarray] = None  # [K, H, W, 3] observed frames in [0, 1], in index order


@dataclass
class CameraData:
    """Per-frame intrinsics ``K [F,3,3]`` (pixels) and OpenCV camera-to-world poses ``c2w [F,4,4]``."""

    K: np.ndarray
    c2w: np.ndarray
    width: int
    height: int
    focal: Optional[np.ndarray] = None


@dataclass
class PointmapData:
    """A pointmap video with its colors.

    ``space`` is ``"normalized"`` straight from the decoder (world = the normalized frame-0 camera, no metric
    scale) or ``"anchored"`` after camera recovery (points, depth and ``cameras`` agree; world = camera of
    frame 0). ``depth`` is per-frame z-depth once cameras are known, else None.
    """

    points: np.ndarray  # [F, H, W, 3] float32
    colors: np.ndarray  # [F, H, W, 3] float32 in [0, 1]
    valid: np.ndarray  # [F, H, W] bool
    indices: list[int] = field(default_factory=list)
    space: str = "normalized"
    cameras: Optional[CameraData] = None
    depth: Optional[np.ndarray] = None
    normalization: dict[str, Any] = field(default_factory=lambda: {"shift_z": 0.0, "scale": 1.0})

    @property
    def shape(self) -> tuple[int, int, int]:
        f, h, w, _ = self.points.shape
        return f, h, w

    def with_(self, **changes) -> "PointmapData":
        return replace(self, **changes)


def latent_meta(modality: str, cond: Conditioning) -> dict[str, Any]:
    return {"modality": modality, "indices": list(cond.indices), "num_frames": cond.num_frames,
            "height": cond.height, "width": cond.width}
