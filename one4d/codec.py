"""The frozen Wan VAE as a video codec for RGB and pointmap videos alike.

Latents are normalized with the VAE's ``latents_mean`` / ``latents_std`` (as Wan's pipelines do), so the
DiT always sees unit-scale latents. Encoding takes the posterior mean: deterministic, as conditioning and
training targets should be.
"""
from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from .backbone import LatentGeometry, vae_geometry
from .progress import per_call


class VideoCodec:
    """Encode ``[B, 3, F, H, W]`` videos in [-1, 1] to normalized ``[B, C, T, h, w]`` latents and back
    (``C`` and the strides: :attr:`geometry`, read from the VAE's config)."""

    def __init__(self, vae: AutoencoderKLWan):
        self.vae = vae
        cfg = vae.config
        self._mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self._std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)

    @property
    def geometry(self) -> LatentGeometry:
        """Latent channels and strides of this VAE (with Wan's DiT patch; the pipeline sets the DiT's own)."""
        return vae_geometry(dict(self.vae.config))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.vae.parameters()).dtype

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Video in [-1, 1] -> normalized latents (float32)."""
        dist = self.vae.encode(video.to(self.device, self.dtype)).latent_dist
        z = dist.mean.float()
        return (z - self._mean.to(z.device)) / self._std.to(z.device)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalized latents -> video in [-1, 1] (float32, clamped); cancellable and reported per latent frame."""
        z = latents.float() * self._std.to(latents.device) + self._mean.to(latents.device)
        with per_call(self.vae.decoder, "decoding", int(latents.shape[2])):  # diffusers decodes frame by frame
            video = self.vae.decode(z.to(self.device, self.dtype)).sample
        return video.float().clamp(-1, 1)

    def decode_video(self, latents: torch.Tensor) -> np.ndarray:
        """Normalized latents of one clip ``[1, C, T, h, w]`` -> frames ``[F, H, W, 3]`` float32 in [-1, 1]."""
        with torch.no_grad():
            return self.decode(latents)[0].permute(1, 2, 3, 0).cpu().numpy().astype(np.float32)

    def decode_pair(self, rgb_latents: torch.Tensor, xyz_latents: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Decode a generated pair: RGB frames ``[F, H, W, 3]`` in [0, 1] and the normalized pointmap
        ``[F, H, W, 3]`` (pointmap space of :mod:`one4d.pointmap`). One clip at a time keeps the peak memory
        of the VAE's causal caches to one video."""
        rgb = self.decode_video(rgb_latents) * 0.5 + 0.5
        return rgb.astype(np.float32), self.decode_video(xyz_latents)

