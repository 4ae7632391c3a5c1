"""Text contexts: Wan's zero padding, and the weight-free hash encoder of small models.

:class:`HashTextEncoder` stands in for umT5 in models too small to carry a 4096-wide text encoder (the
embedded model): each lower-cased word becomes a fixed pseudo-random vector chosen by its CRC32, one
token per word, zero-padded to ``length`` tokens. The empty prompt encodes to all zeros, which is also
the unconditional context used for guidance.
"""
from __future__ import annotations

import re
import zlib
from typing import Callable, Optional

import numpy as np
import torch

from .errors import One4DInputError

TEXT_LEN = 512  # Wan's text context length; the image tokens (if any) are prepended to it.


def pad_text(ctx: torch.Tensor, length: int = TEXT_LEN) -> torch.Tensor:
    """Zero-pad (or cut) a text context to ``length`` tokens (Wan convention: 512)."""
    ctx = ctx if ctx.ndim == 3 else ctx[None]
    if ctx.shape[1] >= length:
        return ctx[:, :length]
    return torch.cat([ctx, ctx.new_zeros(ctx.shape[0], length - ctx.shape[1], ctx.shape[2])], dim=1)


class HashTextEncoder:
    """Deterministic word-hash text embeddings ``[1, length, dim]`` (see module docstring)."""

    def __init__(self, dim: int, length: int):
        self.dim, self.length = dim, length

    def word_vector(self, word: str) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(word.encode("utf-8")))
        return rng.standard_normal(self.dim).astype(np.float32)

    def __call__(self, prompt: str) -> torch.Tensor:
        words = re.findall(r"[a-z0-9]+", prompt.lower())[: self.length]
        out = np.zeros((1, self.length, self.dim), np.float32)
        for i, w in enumerate(words):
            out[0, i] = self.word_vector(w)
        return torch.from_numpy(out)


def text_contexts(
    encoder: Optional[Callable[[str], torch.Tensor]],
    prompt: str = "",
    negative_prompt: str = "",
    context: Optional[torch.Tensor] = None,
    negative_context: Optional[torch.Tensor] = None,
) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Positive and negative text contexts: given ones win, else the built-in ``encoder`` encodes the prompts.
    With a built-in encoder and no negative prompt the negative context is all zeros (the unconditional text);
    without one and no negative context it stays None (the sampler uses zeros)."""
    if context is None:
        if encoder is None:
            raise One4DInputError("this backbone needs text from a text encoder (CLIPTextEncode with the Wan umT5 encoder).")
        context = encoder(prompt)
    if negative_context is None and encoder is not None:
        negative_context = encoder(negative_prompt) if negative_prompt else torch.zeros_like(context)
    return context, negative_context

