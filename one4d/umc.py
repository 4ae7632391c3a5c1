"""Unified Masked Conditioning: observed frames of a video -> Wan-style latent mask and conditioning video.

One scheme for every input sparsity (the paper's section 4): no frame (text-to-4D), the first frame
(image-to-4D), a few frames (sparse) or all frames (reconstruction). Unobserved frames of the conditioning
video are 0 in the VAE's [-1, 1] input space (mid-gray), as Wan2.1-Fun InP expects. The mask follows Wan:
per pixel frame 1 = observed; the first frame's entry is repeated ``time_stride`` times (the first latent
frame stands for one pixel frame), giving ``time_stride * T_lat`` entries grouped onto the mask channels.
Strides, channels and size multiples come from the model's :class:`one4d.backbone.LatentGeometry`
(4, 16 and 16 for Wan2.1: 4 x temporal, 8 x spatial, patch 2).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from .backbone import DitVariant, LatentGeometry
from .codec import VideoCodec
from .errors import One4DInputError
from .text import pad_text

MODES = ("text", "image", "sparse", "video")


@dataclass
class Conditioning:
    """Everything a request conditions on, already in latent / embedding space (batch of one)."""

    num_frames: int
    height: int
    width: int
    indices: list[int]
    mask: Optional[torch.Tensor]  # [1, mask channels, T, h, w]
    cond_latents: Optional[torch.Tensor]  # [1, latent channels, T, h, w]
    context: torch.Tensor  # [1, text length, text_dim]
    geometry: LatentGeometry
    negative_context: Optional[torch.Tensor] = None  # [1, text length, text_dim]; None -> zeros
    clip_context: Optional[torch.Tensor] = None  # [1, 257, 1280] CLIP vision tokens, if the backbone takes them
    # what the sampler pins fully observed latent frames to: cond_latents with the given frame of an image-to-4D
    # request refined for the decoder (VideoCodec.refine); None -> cond_latents
    pinned_latents: Optional[torch.Tensor] = None

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.geometry.latent_shape(self.num_frames, self.height, self.width)


def validate_video_size(num_frames: int, height: int, width: int, geometry: LatentGeometry) -> None:
    """Check F = k * time_stride + 1 and H, W multiples of the geometry's size multiple, naming the nearest
    valid values in the error."""
    ts, m = geometry.time_stride, geometry.size_multiple
    if num_frames < 1 or (num_frames - 1) % ts:
        lo = max(1, (num_frames - 1) // ts * ts + 1)
        raise One4DInputError(
            f"length {num_frames} is not {ts}k+1 (this model's VAE needs 1, {1 + ts}, {1 + 2 * ts}, ... frames); use {lo} or {lo + ts}."
        )
    for name, value in (("height", height), ("width", width)):
        if value < m or value % m:
            near = max(m, round(value / m) * m)
            raise One4DInputError(f"{name} {value} is not a positive multiple of {m}; use {near}.")


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


def build_mask(indices: Sequence[int], num_frames: int, latent_hw: tuple[int, int], geometry: LatentGeometry,
               batch: int = 1) -> torch.Tensor:
    """Wan-style latent mask ``[B, s, T_lat, h, w]`` (``s`` = time stride): entry (c, t) = observed(pixel
    frame of slot s * t + c)."""
    validate_indices(indices, num_frames)
    per_frame = torch.zeros(num_frames)
    per_frame[list(indices)] = 1.0
    packed = torch.cat([per_frame[:1].repeat(geometry.time_stride), per_frame[1:]])  # s * T_lat entries
    grouped = packed.view(geometry.latent_frames(num_frames), geometry.mask_channels).t()  # [s, T_lat]
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
    video = torch.zeros(1, 3, num_frames, h, w, dtype=torch.float32)
    if len(indices):
        video[0, :, list(indices)] = frames.float().clamp(0, 1).permute(3, 0, 1, 2) * 2 - 1
    return video


def model_geometry(codec: VideoCodec, variant: DitVariant) -> LatentGeometry:
    """The geometry of a VAE + DiT pair, checked for agreement: the DiT must read and write the VAE's latents."""
    geometry = codec.geometry.with_patch(variant.patch)
    cfg = variant.config
    if cfg["out_channels"] != geometry.channels or cfg["in_channels"] not in (geometry.channels, geometry.inp_channels):
        raise One4DInputError(
            f"the DiT ({cfg['in_channels']} input / {cfg['out_channels']} output channels) does not fit this VAE "
            f"({geometry.channels} latent channels, {geometry.mask_channels} mask channels): load the VAE the DiT was trained with."
        )
    return geometry


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
    refine_steps: int = 0,
) -> Conditioning:
    """The UMC conditioning of a request: mask and VAE-encoded conditioning video (for InP backbones) and
    the text contexts padded to ``text_length`` tokens. ``frames``: ``[K, H, W, 3]`` in [0, 1], one per index.

    With ``refine_steps`` in image-to-4D (frame 0 given alone), its latent frame is refined for the decoder
    (:meth:`one4d.codec.VideoCodec.refine`) into :attr:`Conditioning.pinned_latents`. Decision: only there, where
    the given frame is all the user gave: on the embedded suite it comes back 0.74 dB sharper, where refining frame
    0 of a full or sparse request gains 0.04 / 0.07 dB over its given frames, and every window of a long clip has a
    frame 0 to refine (a 17-frame clip refined whole costs 1.8 s per step, 45 s for 25 steps, for +0.4-0.5 dB)."""
    geometry = model_geometry(codec, variant)
    validate_video_size(num_frames, height, width, geometry)
    t, h, w = geometry.latent_shape(num_frames, height, width)
    indices = list(indices)
    validate_indices(indices, num_frames)
    accepts = variant.accepts_conditioning
    if indices and not accepts:
        raise One4DInputError(
            f"this backbone is text-to-video only ({variant.config['in_channels']} input channels): give no frames, or load an InP model."
        )
    if indices:
        if frames is None:
            raise One4DInputError(f"frame indices {indices} were given without images; connect the images.")
        if tuple(frames.shape[1:3]) != (height, width):
            raise One4DInputError(
                f"the images are {frames.shape[2]}x{frames.shape[1]} but the video is {width}x{height}; "
                "resize the images (e.g. ImageScale) or change width/height."
            )
    mask = cond_lat = pinned = None
    if accepts:
        video = build_condition_video(frames if indices else torch.zeros(0, height, width, 3), indices, num_frames)
        with torch.no_grad():
            cond_lat = codec.encode(video)
        mask = build_mask(indices, num_frames, (h, w), geometry)
        if refine_steps > 0 and indices == [0]:
            pinned = codec.refine(video, cond_lat, torch.arange(t) == 0, refine_steps)
    text_dim = variant.config["text_dim"]
    if context.shape[-1] != text_dim:
        raise One4DInputError(
            f"the text conditioning has width {context.shape[-1]} but this backbone expects {text_dim}; "
            "use the Wan umT5 text encoder (CLIPLoader type 'wan') for Wan backbones."
        )
    negative = None if negative_context is None else pad_text(negative_context, text_length)
    return Conditioning(num_frames, height, width, indices, mask, cond_lat, pad_text(context, text_length), geometry, negative,
                        clip_context, pinned)

