"""Unified Masked Conditioning: observed frames of a video -> Wan-style latent mask and conditioning video.

One scheme for every input sparsity (the paper's section 4): no frame (text-to-4D), the first frame
(image-to-4D), a few frames (sparse) or all frames (reconstruction). Unobserved frames of the conditioning
video are 0 in the VAE's [-1, 1] input space (mid-gray), as Wan2.1-Fun InP expects. The mask follows Wan:
per pixel frame 1 = observed; the first frame's entry is repeated 4 times (the first latent frame stands for
one pixel frame), giving 4 * T_lat entries grouped in fours onto the 4 mask channels.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .backbone import MASK_CHANNELS, VAE_SPACE_STRIDE, VAE_TIME_STRIDE, DitVariant
from .codec import VideoCodec
from .errors import One4DInputError
from .text import pad_text

SIZE_MULTIPLE = 16  # VAE 8 x patch 2
MODES = ("text", "image", "sparse", "video")


@dataclass
class Conditioning:
    """Everything a request conditions on, already in latent / embedding space (batch of one)."""

    num_frames: int
    height: int
    width: int
    indices: list[int]
    mask: Optional[torch.Tensor]  # [1, 4, T, h, w]
    cond_latents: Optional[torch.Tensor]  # [1, 16, T, h, w]
    context: torch.Tensor  # [1, text length, text_dim]
    negative_context: Optional[torch.Tensor] = None  # [1, text length, text_dim]; None -> zeros
    clip_context: Optional[torch.Tensor] = None  # [1, 257, 1280] CLIP vision tokens, if the backbone takes them


def latent_frames(num_frames: int) -> int:
    """Latent frame count for ``num_frames`` pixel frames (Wan VAE: 4x temporal compression, causal first frame)."""
    return (num_frames - 1) // VAE_TIME_STRIDE + 1


def validate_video_size(num_frames: int, height: int, width: int) -> None:
    """Check F = 4k + 1 and H, W multiples of 16, naming the nearest valid values in the error."""
    if num_frames < 1 or (num_frames - 1) % VAE_TIME_STRIDE:
        lo = max(1, (num_frames - 1) // 4 * 4 + 1)
        raise One4DInputError(f"length {num_frames} is not 4k+1 (the Wan VAE needs 1, 5, 9, ..., 81 frames); use {lo} or {lo + 4}.")
    for name, value in (("height", height), ("width", width)):
        if value < SIZE_MULTIPLE or value % SIZE_MULTIPLE:
            near = max(SIZE_MULTIPLE, round(value / SIZE_MULTIPLE) * SIZE_MULTIPLE)
            raise One4DInputError(f"{name} {value} is not a positive multiple of 16; use {near}.")


def sparse_indices(num_frames: int, ratio: float) -> list[int]:
    """First, last and evenly spaced frames between, about ``ratio * num_frames`` in all (paper's protocol)."""
    if not 0 < ratio <= 1:
        raise One4DInputError(f"sparsity ratio {ratio} must be in (0, 1]; e.g. 0.25 keeps a quarter of the frames.")
    count = min(num_frames, max(2 if num_frames > 1 else 1, round(ratio * num_frames)))
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, count)})


def parse_indices(spec: str, num_frames: int, available: int | None = None) -> list[int]:
    """Parse a frame selection: ``none``, ``first``, ``all``, ``even:N`` (N evenly spaced) or ``0,20,40,80``.

    ``available`` is how many frames the user supplied; it bounds ``all`` and is checked against the count.
    """
    text = spec.strip().lower()
    if text in ("", "none", "text"):
        out: list[int] = []
    elif text == "first":
        out = [0]
    elif text == "all":
        out = list(range(num_frames))
    elif text.startswith("even:"):
        try:
            count = int(text[5:])
        except ValueError:
            raise One4DInputError(f"frame indices '{spec}': 'even:' needs a whole number, e.g. 'even:5'.") from None
        if not 1 <= count <= num_frames:
            raise One4DInputError(f"frame indices '{spec}': count must be 1..{num_frames}.")
        out = [0] if count == 1 else sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, count)})
    else:
        try:
            out = [int(tok) for tok in text.replace(";", ",").replace(" ", ",").split(",") if tok]
        except ValueError:
            raise One4DInputError(
                f"frame indices '{spec}' are not understood; write numbers separated by commas (e.g. '0,20,40,80'), "
                "or 'first', 'all', 'even:5', 'none'."
            ) from None
    validate_indices(out, num_frames)
    if available is not None and len(out) != available and not (text == "all" and available == num_frames):
        raise One4DInputError(
            f"{available} image(s) were given for {len(out)} frame index(es) '{spec}'; give one image per index."
        )
    return out


def validate_indices(indices: Sequence[int], num_frames: int) -> None:
    """Indices must be unique and inside [0, num_frames)."""
    bad = [i for i in indices if not 0 <= i < num_frames]
    if bad:
        raise One4DInputError(f"frame index {bad[0]} is outside the video of {num_frames} frames (valid: 0..{num_frames - 1}).")
    if len(set(indices)) != len(indices):
        raise One4DInputError(f"frame indices {list(indices)} repeat a frame; list each frame once.")


def mode_of(indices: Sequence[int], num_frames: int) -> str:
    """Name the task for a set of observed frames: text, image, sparse or video."""
    if not indices:
        return "text"
    if len(indices) == num_frames:
        return "video"
    return "image" if list(indices) == [0] else "sparse"


def build_mask(indices: Sequence[int], num_frames: int, latent_hw: tuple[int, int], batch: int = 1) -> torch.Tensor:
    """Wan-style latent mask ``[B, 4, T_lat, h, w]``: entry (c, t) = observed(pixel frame of slot 4t + c)."""
    validate_indices(indices, num_frames)
    per_frame = torch.zeros(num_frames)
    per_frame[list(indices)] = 1.0
    packed = torch.cat([per_frame[:1].repeat(VAE_TIME_STRIDE), per_frame[1:]])  # 4 * T_lat entries
    grouped = packed.view(latent_frames(num_frames), MASK_CHANNELS).t()  # [4, T_lat]
    h, w = latent_hw
    return grouped[None, :, :, None, None].expand(batch, -1, -1, h, w).contiguous()


def build_condition_video(frames: torch.Tensor, indices: Sequence[int], num_frames: int) -> torch.Tensor:
    """Place observed frames into a ``[1, 3, F, H, W]`` video in [-1, 1]; unobserved frames are 0 (mid-gray).

    ``frames``: ``[K, H, W, 3]`` in [0, 1] (ComfyUI IMAGE layout), one per index, in index order.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise One4DInputError(f"conditioning frames must be [K, H, W, 3] RGB images, got shape {tuple(frames.shape)}.")
    if frames.shape[0] != len(indices):
        raise One4DInputError(f"{frames.shape[0]} conditioning image(s) for {len(indices)} frame index(es); give one image per index.")
    if not torch.isfinite(frames).all():
        raise One4DInputError("conditioning frames contain NaN or infinite values; check the images fed in.")
    validate_indices(indices, num_frames)
    _, h, w, _ = frames.shape
    validate_video_size(num_frames, h, w)
    video = torch.zeros(1, 3, num_frames, h, w, dtype=torch.float32)
    if len(indices):
        video[0, :, list(indices)] = frames.float().clamp(0, 1).permute(3, 0, 1, 2) * 2 - 1
    return video


def latent_shape(num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    """``(T_lat, h, w)`` of the latents for a video size."""
    validate_video_size(num_frames, height, width)
    return latent_frames(num_frames), height // VAE_SPACE_STRIDE, width // VAE_SPACE_STRIDE


def build_conditioning(
    codec: VideoCodec,
    variant: DitVariant,
    num_frames: int,
    height: int,
    width: int,
    frames: Optional[torch.Tensor],
    indices: Sequence[int],
    context: torch.Tensor,
    negative_context: Optional[torch.Tensor],
    text_length: int,
    clip_context: Optional[torch.Tensor] = None,
) -> Conditioning:
    """The UMC conditioning of a request: mask and VAE-encoded conditioning video (for InP backbones) and
    the text contexts padded to ``text_length`` tokens. ``frames``: ``[K, H, W, 3]`` in [0, 1], one per index."""
    t, h, w = latent_shape(num_frames, height, width)
    indices = list(indices)
    validate_indices(indices, num_frames)
    accepts = variant.accepts_conditioning
    if indices and not accepts:
        raise One4DInputError("this backbone is text-to-video only (16 input channels): give no frames, or load an InP model.")
    if indices:
        if frames is None:
            raise One4DInputError(f"frame indices {indices} were given without images; connect the images.")
        if tuple(frames.shape[1:3]) != (height, width):
            raise One4DInputError(
                f"the images are {frames.shape[2]}x{frames.shape[1]} but the video is {width}x{height}; "
                "resize the images (e.g. ImageScale) or change width/height."
            )
    mask = cond_lat = None
    if accepts:
        video = build_condition_video(frames if indices else torch.zeros(0, height, width, 3), indices, num_frames)
        with torch.no_grad():
            cond_lat = codec.encode(video)
        mask = build_mask(indices, num_frames, (h, w))
    text_dim = variant.config["text_dim"]
    if context.shape[-1] != text_dim:
        raise One4DInputError(
            f"the text conditioning has width {context.shape[-1]} but this backbone expects {text_dim}; "
            "use the Wan umT5 text encoder (CLIPLoader type 'wan') for Wan backbones."
        )
    negative = None if negative_context is None else pad_text(negative_context, text_length)
    return Conditioning(num_frames, height, width, indices, mask, cond_lat, pad_text(context, text_length), negative, clip_context)

