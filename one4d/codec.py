"""The frozen Wan VAE as a video codec for RGB and pointmap videos alike.

Latents are normalized with the VAE's ``latents_mean`` / ``latents_std`` (as Wan's pipelines do), so the
DiT always sees unit-scale latents. Encoding takes the posterior mean: deterministic, as conditioning and
training targets should be.

Refinement (:meth:`VideoCodec.refine`): the encoder is one amortized guess, and the decoder can do better
than what it is given. For the embedded model's small VAE the gap is large: on the four held-out photos,
latents optimized for the decoder reach 28.5 dB against the encoder's 25.0 dB (``scripts/refine_bound.py``).
Decision (the paper, on Wan's large VAE, has no such step): latent frames a user gave in full can be refined
with a few Adam steps on the decoder's reconstruction error, with a penalty that keeps them near the encoder's
latents (25 steps at rate 0.1, weight 0.01 on the mean squared change in normalized units: 26.5 dB, an RMS
change of 0.27). The sampler pins those frames to the refined latents, so the given frames come back sharper;
the DiT is still conditioned on the encoder's own latents, the distribution it was trained on. Which frames
and how many steps: :func:`one4d.umc.build_conditioning` and :attr:`one4d.defaults.ModelDefaults.refine_steps`.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from diffusers import AutoencoderKLWan

from .backbone import LatentGeometry, vae_geometry
from .progress import check_cancelled, per_call

REFINE_RATE = 0.1  # Adam step on normalized latents
REFINE_WEIGHT = 0.01  # penalty on the mean squared change, in normalized units


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

    def refine(self, video: torch.Tensor, latents: torch.Tensor, latent_frames: torch.Tensor, steps: int,
               rate: float = REFINE_RATE, weight: float = REFINE_WEIGHT) -> torch.Tensor:
        """Normalized ``latents`` of ``video`` (``[1, 3, F, H, W]`` in [-1, 1]) with the latent frames marked in
        ``latent_frames`` (bool ``[T]``) refined by ``steps`` Adam steps of size ``rate`` so that they decode closer to
        their pixel frames, ``weight`` on the mean squared change (module docstring); the other latent frames are
        returned as they were. The best step is kept, so a refined frame never decodes worse than the encoder's."""
        if steps <= 0 or not bool(latent_frames.any()):
            return latents
        stride = self.geometry.time_stride
        last = int(torch.nonzero(latent_frames).max())
        # pixel frames of each latent frame: frame 0 alone, then `stride` frames per latent frame (causal VAE)
        owner = torch.cat([torch.zeros(1, dtype=torch.long), torch.arange(stride * last) // stride + 1])
        target_frames = latent_frames[owner]
        with torch.inference_mode(False), torch.enable_grad():
            vae = self.vae
            if any(p.is_inference() for p in vae.parameters()):  # loaded under ComfyUI's inference mode
                vae = copy.deepcopy(vae)
            grads = [p.requires_grad for p in vae.parameters()]
            vae.requires_grad_(False)
            try:
                base = latents[:, :, : last + 1].detach().clone().float().to(self.device)
                target = video[:, :, : owner.numel()].detach().clone().float().to(self.device)
                # clones: tensors made under inference mode cannot be saved for backward
                mean, std = self._mean.to(self.device).clone(), self._std.to(self.device).clone()
                keep = latent_frames[: last + 1].to(self.device).view(1, 1, -1, 1, 1).float().clone()
                pick = target_frames.to(self.device).clone()
                delta = torch.zeros_like(base, requires_grad=True)
                opt = torch.optim.Adam([delta], lr=rate)
                best, best_loss = delta.detach().clone(), float("inf")
                for step in range(steps + 1):  # the last pass only scores the last update
                    check_cancelled("refining the given frames")
                    z = (base + delta * keep) * std + mean
                    decoded = vae.decode(z.to(self.dtype)).sample.float()
                    err = (decoded[:, :, pick] - target[:, :, pick]).square().mean()
                    loss = err + weight * (delta * keep).square().sum() / (keep.sum() * delta[:, :, :1].numel())
                    if loss.item() < best_loss:
                        best_loss, best = loss.item(), delta.detach().clone()
                    if step == steps:
                        break
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            finally:
                for p, g in zip(vae.parameters(), grads):
                    p.requires_grad_(g)
        out = latents.clone()
        out[:, :, : last + 1] = (base + best * keep).to(out.device, out.dtype)
        return out

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

