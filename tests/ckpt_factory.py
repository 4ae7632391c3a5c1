"""Generated Wan checkpoints with the real key names of each style (for loader tests; never downloaded)."""
from __future__ import annotations

import re

import torch

_TOP = [
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),
    ("condition_embedder.time_proj", "time_projection.1"),
    ("condition_embedder.image_embedder.norm1", "img_emb.proj.0"),
    ("condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"),
    ("condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"),
    ("condition_embedder.image_embedder.norm2", "img_emb.proj.4"),
    ("proj_out", "head.head"),
]
_BLOCK = [
    (".attn1.", ".self_attn."),
    (".attn2.", ".cross_attn."),
    (".to_q.", ".q."),
    (".to_k.", ".k."),
    (".to_v.", ".v."),
    (".to_out.0.", ".o."),
    (".add_k_proj.", ".k_img."),
    (".add_v_proj.", ".v_img."),
    (".norm_added_k.", ".norm_k_img."),
    (".ffn.net.0.proj.", ".ffn.0."),
    (".ffn.net.2.", ".ffn.2."),
    (".norm2.", ".norm3."),
    (".scale_shift_table", ".modulation"),
]


def to_original_key(key: str) -> str:
    """diffusers Wan DiT key -> original Wan / ComfyUI key (the inverse of diffusers' converter)."""
    if key == "scale_shift_table":
        return "head.modulation"
    for new, old in _TOP:
        if key.startswith(new + "."):
            return old + key[len(new):]
    if key.startswith("blocks."):
        out = key
        for new, old in _BLOCK:
            out = out.replace(new, old)
        return out
    return key


def original_state_dict(sd: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {(k if k == "scaled_fp8" else prefix + to_original_key(k)): v for k, v in sd.items()}


def fp8_state_dict(sd: dict[str, torch.Tensor], scaled: bool) -> dict[str, torch.Tensor]:
    """Store 2-D+ weights as float8_e4m3fn; ``scaled`` writes ComfyUI's scaled-fp8 layout."""
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if k.endswith(".weight") and v.ndim >= 2 and re.search(r"blocks\.", k):
            if scaled:
                scale = v.abs().max().float().clamp(min=1e-12) / 448.0
                out[k] = (v.float() / scale).to(torch.float8_e4m3fn)
                out[k[: -len(".weight")] + ".scale_weight"] = scale.reshape(1)
            else:
                out[k] = v.to(torch.float8_e4m3fn)
        else:
            out[k] = v
    if scaled:
        out["scaled_fp8"] = torch.zeros(2, dtype=torch.float8_e4m3fn)
    return out
