"""Widening a trained Wan VAE's latent without losing what it has learned (``one4d train vae --vae-z-dim``).

Decision: a linear codec of the training clips (PCA on 4 x 4 x 4 x 3 blocks) reconstructs frames 1-16 at
23.8 dB with 16 components and 25.4 dB with 32 (docs/embedded.md), so the 16-channel VAE's ceiling is low;
more channels cost the DiT nothing (its tokens follow the strides, not the channels). Rather than train a
wider VAE from scratch, the new channels are added the way LoRA adds adapters: the encoder computes them
from its features with small random weights, and the decoder reads them through zero weights. The widened
VAE reconstructs exactly as the original did, and training teaches it to use the new channels. (Measured
over 1,000 steps from the first v2 checkpoint: a tie with 16 channels, docs/embedded.md.)
"""
from __future__ import annotations

from typing import Any

import torch

from ..errors import One4DInputError

NEW_LOGVAR = -10.0  # the posterior log-variance of the new channels: that of the trained ones (about -10)


def widen_latent(state: dict[str, torch.Tensor], config: dict[str, Any], z_dim: int,
                 seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and config of the same VAE with ``z_dim`` latent channels instead of ``config["z_dim"]``.

    Touches the four layers that carry the latent: ``encoder.conv_out`` (features -> mean and log-variance),
    ``quant_conv`` (1x1, on mean and log-variance), ``post_quant_conv`` (1x1, on the latent) and
    ``decoder.conv_in`` (latent -> features). The config's latent statistics become placeholders (mean 0, std
    1; a round trip does not depend on them) until they are measured again when the widened VAE is saved."""
    old = int(config["z_dim"])
    if z_dim <= old:
        raise One4DInputError(f"--vae-z-dim {z_dim} must be more than the --vae-init VAE's {old} latent channels; "
                              f"e.g. --vae-z-dim {2 * old}, or leave it out to keep {old}.")
    gen = torch.Generator().manual_seed(seed)
    new = z_dim - old
    out = {k: v.float().clone() for k, v in state.items()}

    w, b = out["encoder.conv_out.weight"], out["encoder.conv_out.bias"]  # rows: [mean (old), log-variance (old)]
    fresh = torch.randn((new, *w.shape[1:]), generator=gen) * w[:old].std()
    out["encoder.conv_out.weight"] = torch.cat([w[:old], fresh, w[old:], torch.zeros_like(fresh)])
    out["encoder.conv_out.bias"] = torch.cat([b[:old], torch.zeros(new), b[old:], torch.zeros(new)])

    w, b = out["quant_conv.weight"], out["quant_conv.bias"]  # 1x1 over [mean, log-variance]
    q = torch.zeros(2 * z_dim, 2 * z_dim, *w.shape[2:])
    mean, logvar = slice(0, old), slice(z_dim, z_dim + old)  # where the old channels sit in the widened layout
    for dst, src in ((mean, slice(0, old)), (logvar, slice(old, 2 * old))):
        q[dst, mean] = w[src, :old]
        q[dst, logvar] = w[src, old:]
    q[old:z_dim, old:z_dim] = torch.eye(new).view(new, new, *([1] * (w.dim() - 2)))
    out["quant_conv.weight"] = q
    out["quant_conv.bias"] = torch.cat([b[:old], torch.zeros(new), b[old:], torch.full((new,), NEW_LOGVAR)])

    w, b = out["post_quant_conv.weight"], out["post_quant_conv.bias"]
    p = torch.zeros(z_dim, z_dim, *w.shape[2:])
    p[:old, :old] = w
    p[old:, old:] = torch.eye(new).view(new, new, *([1] * (w.dim() - 2)))
    out["post_quant_conv.weight"] = p
    out["post_quant_conv.bias"] = torch.cat([b, torch.zeros(new)])

    w = out["decoder.conv_in.weight"]
    out["decoder.conv_in.weight"] = torch.cat([w, torch.zeros(w.shape[0], new, *w.shape[2:])], dim=1)

    return out, dict(config, z_dim=z_dim, latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim)
