"""Carry a DiT trained on one VAE's latents over to another VAE's latent space.

A new VAE means a new latent space, and a base DiT (and every One4D adapter on it) trained from scratch again.
The two spaces code the same pixels, so they are related: :func:`latent_maps` fits a rotation between them
(token by token, in the DiT's normalized units, on the same training clips encoded by both),
and :func:`transplant_dit` folds them into the only layers that see latents, the patch embedding (the noisy
and the conditioning latents) and the output projection. The adapters and links live inside the blocks and
are untouched, so ``--one4d-init`` can carry them too.

This is a starting point for training, not an equivalence: the two spaces are only partly linear in each other
(between the v2 and residual embedded VAEs, a free linear map explains 0.69 of the variance for RGB and 0.72 for
pointmaps, a rotation 0.45). No bias: both spaces are normalized to zero mean and unit variance per channel.
Measured on the shipped v2 DiT (flow loss on residual-VAE latents of 32 training clips; on its own latents 0.23):
untouched 2.30, random weights 2.26, carried by a rotation 0.72, by a free least-squares map 75 (its singular
values ran from 27 down to 0, amplifying the noise input), ridge-regularized 1.4.
"""
from __future__ import annotations

import numpy as np
import torch

from ..backbone import LatentGeometry
from ..codec import VideoCodec
from .data import pointmap_videos, video_tensor


def fitting_clips(data, per_modality: int = 48) -> np.ndarray:
    """The clips the maps are fitted on: the first ``per_modality`` RGB videos of a training set and as many
    pointmap videos (both modalities share one latent space)."""
    return np.concatenate([data["rgb"][:per_modality], pointmap_videos(data, per_modality)])


def _tokens(codec: VideoCodec, clips: np.ndarray, batch: int = 8) -> torch.Tensor:
    """Normalized latents of uint8 clips ``[N, F, H, W, 3]`` as ``[tokens, C]`` rows (float64)."""
    with torch.no_grad():
        z = torch.cat([codec.encode(video_tensor(clips[i : i + batch])) for i in range(0, len(clips), batch)])
    return z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1]).double()


def latent_maps(old: VideoCodec, new: VideoCodec, clips: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(old_from_new, new_from_old, r2)``: the rotation (orthogonal Procrustes) that best maps the new codec's
    normalized latents of ``clips`` onto the old one's, its transpose, and the share of the old latents' variance
    it explains. A rotation keeps the sampler's unit noise unit noise; a free least-squares map fits the latents
    better but amplifies the noise input (figures in the module docstring)."""
    if old.geometry.channels != new.geometry.channels:
        raise ValueError("a rotation maps between latent spaces of the same width")
    a, b = _tokens(old, clips), _tokens(new, clips)
    u, _, vt = torch.linalg.svd(a.T @ b)
    old_from_new = u @ vt
    r2 = 1 - ((a - b @ old_from_new.T).var(0) / a.var(0)).mean().item()
    return old_from_new.float(), old_from_new.T.float(), r2


def transplant_dit(state: dict[str, torch.Tensor], geometry: LatentGeometry, old_from_new: torch.Tensor,
                   new_from_old: torch.Tensor) -> dict[str, torch.Tensor]:
    """A DiT state dict for the new latent space: the patch embedding reads new latents as the old ones they map
    to (noise and conditioning channels; the mask channels are kept), and the output projection writes the
    old prediction mapped into the new space. ``geometry`` is the new VAE's (with the DiT's patch)."""
    c, m = geometry.channels, geometry.mask_channels
    out = dict(state)
    w = state["patch_embedding.weight"]  # [dim, 2C + m, pt, ph, pw]: [noise | mask | cond]
    mapped = lambda part: torch.einsum("oi...,ij->oj...", part.float(), old_from_new).to(w.dtype)
    out["patch_embedding.weight"] = torch.cat([mapped(w[:, :c]), w[:, c : c + m], mapped(w[:, c + m :])], dim=1)
    for key in ("proj_out.weight", "proj_out.bias"):  # rows ordered (pt, ph, pw, channel)
        p = state[key]
        rows = p.float().reshape(-1, new_from_old.shape[1], *p.shape[1:])
        out[key] = torch.einsum("ni,ki...->kn...", new_from_old, rows).reshape(-1, *p.shape[1:]).to(p.dtype)
    return out
