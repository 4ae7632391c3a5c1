"""Training memory of One4D on the real backbones, on paper: tokens, and per-GPU memory of the frozen base, of
the trainable adapters and links with their gradients and AdamW state, and of the activations with and
without gradient checkpointing, per backbone and clip size.

Assumptions (no GPU was at hand to measure; the formulas are what the figures are worth):
- Tokens per branch: ``T x (H / 16) x (W / 16)`` with ``T = (F - 1) / 4 + 1`` (Wan's 4x / 8x VAE and 2x2
  patch); both branches run in one batch, so activations count twice that.
- Base: every DiT parameter in bf16 (2 bytes), or fp8 storage (1 byte). The text encoder and VAE are not
  on the GPU during training (the latent cache holds their outputs).
- Adapters and links (rank 64, 5 links, the paper's): fp32 weights, fp32 gradients and AdamW's two fp32
  moments, 16 bytes a parameter (adapter counts from :func:`one4d.dlc.count_dlc_parameters`).
- Activations kept for the backward pass, per token and block, in bf16: the block input, the normalized and
  modulated inputs of both attentions and the FFN, q, k, v and the attention output, the cross-attention's
  query and output, and the FFN's two wide intermediates: about ``14 d + 2 ffn`` values (memory-efficient
  attention keeps no score matrix). With checkpointing only each block's input is kept, plus one block's
  activations while it is recomputed.
"""
from __future__ import annotations

from ..backbone import DIT_PRESETS, DitVariant, build_dit
from ..dlc import DLCConfig, count_dlc_parameters

BACKBONES = {"1.3b": "wan2.1-fun-v1.1-1.3b-inp", "14b": "wan2.1-fun-v1.1-14b-inp"}
CLIPS = {"17x480x832": (17, 480, 832), "81x352x624": (81, 352, 624), "81x480x832": (81, 480, 832)}
GB = 1024**3


def tokens(frames: int, height: int, width: int) -> int:
    """Tokens of one branch for a Wan2.1 clip."""
    return ((frames - 1) // 4 + 1) * (height // 16) * (width // 16)


def memory_table() -> dict[str, float]:
    """The figures of the module docstring, flat: ``<backbone>_<clip>_<figure>`` (GiB unless a count)."""
    out: dict[str, float] = {}
    for name, preset in BACKBONES.items():
        cfg = DIT_PRESETS[preset]
        params = sum(p.numel() for p in build_dit(cfg, device="meta").parameters())
        trainable = count_dlc_parameters(DitVariant(cfg, preset), DLCConfig(rank=64))["total"]
        d, ffn, layers = cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["ffn_dim"], cfg["num_layers"]
        out[f"{name}_base_bf16_gib"] = params * 2 / GB
        out[f"{name}_base_fp8_gib"] = params / GB
        out[f"{name}_trainable_params"] = trainable
        out[f"{name}_trainable_with_adamw_gib"] = trainable * 16 / GB
        for clip, (f, h, w) in CLIPS.items():
            n = 2 * tokens(f, h, w)  # both branches
            block = n * (14 * d + 2 * ffn) * 2
            out[f"{name}_{clip}_tokens_per_branch"] = n // 2
            out[f"{name}_{clip}_activations_gib"] = layers * block / GB
            out[f"{name}_{clip}_activations_checkpointed_gib"] = (layers * n * d * 2 + block) / GB
    return out
