"""Small conversions between ComfyUI IMAGE batches and what the library takes or gives.

- :func:`fit_frames`: like core's ``common_upscale(..., "center")`` (what WanImageToVideo does with its start
  image): crop the centre to the target aspect ratio, or pad with the unobserved-frame gray, then resize
  (bilinear, antialiased).
- :func:`depth_to_image`: a depth video as a grey IMAGE batch for the core save/preview nodes: near is
  white, far is black (the usual ControlNet depth look), one range for the whole clip (2nd..98th
  percentile of valid depths) so brightness does not flicker between frames; invalid pixels are black.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from one4d.data.media import PAD_GRAY, fit_box


def fit_frames(images: torch.Tensor, height: int, width: int, fit: str = "crop") -> torch.Tensor:
    """``[N, H, W, 3]`` in [0, 1] -> ``[N, height, width, 3]``: centre crop to the aspect ratio (``crop``) or
    gray margins around the whole picture (``pad``), as the library's :func:`one4d.data.media.fit_box`, then
    resize."""
    n, h, w, _ = images.shape
    if (h, w) == (height, width):
        return images.float()
    bh, bw, top, left = fit_box(h, w, height, width, fit)
    x = images.float().permute(0, 3, 1, 2)
    if fit == "crop":
        x = x[:, :, top:top + bh, left:left + bw]
    else:
        canvas = torch.full((n, 3, bh, bw), PAD_GRAY, dtype=x.dtype)
        canvas[:, :, top:top + h, left:left + w] = x
        x = canvas
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def depth_to_image(depth: np.ndarray, valid: np.ndarray | None = None) -> torch.Tensor:
    """``[F, H, W]`` depth -> ``[F, H, W, 3]`` float IMAGE in [0, 1] (near = white, see module docstring)."""
    d = np.asarray(depth, np.float32)
    ok = np.isfinite(d) & (d > 0) if valid is None else (np.asarray(valid, bool) & np.isfinite(d))
    if ok.any():
        lo, hi = np.percentile(d[ok], [2.0, 98.0])
    else:
        lo, hi = 0.0, 1.0
    span = max(float(hi - lo), 1e-8)
    g = 1.0 - np.clip((d - lo) / span, 0.0, 1.0)
    g = np.where(ok, g, 0.0).astype(np.float32)
    return torch.from_numpy(np.repeat(g[..., None], 3, axis=-1))


def to_image(rgb: np.ndarray) -> torch.Tensor:
    """Float ``[F, H, W, 3]`` numpy in [0, 1] -> ComfyUI IMAGE tensor."""
    return torch.from_numpy(np.clip(np.asarray(rgb, np.float32), 0.0, 1.0)).contiguous()
