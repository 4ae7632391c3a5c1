"""Community Wan LoRA files stacked on the RGB branch only.

Key styles accepted: ComfyUI / original Wan (``diffusion_model.blocks.0.self_attn.q.lora_A.weight`` or
``lora_down``/``lora_up`` with ``.alpha``), musubi-tuner (``lora_unet_blocks_0_self_attn_q.lora_down.weight``)
and diffusers/peft (``[transformer.]blocks.0.attn1.to_q.lora_A.weight``). Conversion is diffusers' own
(it folds alpha into the weights), then the LoRA becomes an extra peft adapter whose delta the two-branch
forward adds to the RGB half of the batch only, with a strength.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from diffusers.loaders.lora_conversion_utils import (
    _convert_musubi_wan_lora_to_diffusers,
    _convert_non_diffusers_wan_lora_to_diffusers,
)
from peft import LoraConfig
from peft.utils import set_peft_model_state_dict

from .backbone import read_safetensors
from .dlc import One4DModel
from .errors import One4DInputError


def lora_key_style(sd: dict[str, torch.Tensor]) -> str:
    """``musubi``, ``original`` or ``diffusers`` (raises for anything else)."""
    keys = list(sd)
    if any(k.startswith("lora_unet_") for k in keys):
        return "musubi"
    if any(re.search(r"(self_attn|cross_attn)\.[qkvo]", k) or ".ffn.0." in k or ".ffn.2." in k for k in keys):
        return "original"
    if any(".lora_A." in k and (".attn1." in k or ".attn2." in k or ".ffn." in k) for k in keys):
        return "diffusers"
    raise One4DInputError(
        "this file is not a Wan LoRA in a known key style (ComfyUI/original, musubi-tuner or diffusers); "
        f"first keys: {keys[:2]}."
    )


def to_peft_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert any supported Wan LoRA key style to adapter-free peft keys (``blocks.0.attn1.to_q.lora_A.weight``)."""
    style = lora_key_style(sd)
    try:
        if style == "musubi":
            sd = _convert_musubi_wan_lora_to_diffusers(dict(sd))
        elif style == "original":
            sd = {k if k.startswith("diffusion_model.") else "diffusion_model." + k: v for k, v in sd.items()}
            sd = _convert_non_diffusers_wan_lora_to_diffusers(sd)
    except (KeyError, ValueError, IndexError) as exc:
        raise One4DInputError(
            f"this {style}-style Wan LoRA has keys One4D cannot convert ({str(exc)[:120]}); it may be for another "
            "model family (Wan2.2, VACE) or hold layers other than the DiT blocks."
        ) from None
    out = {}
    for key, value in sd.items():
        key = key[len("transformer."):] if key.startswith("transformer.") else key
        if ".lora_A." in key or ".lora_B." in key:
            out[key] = value
    if not out:
        raise One4DInputError("the LoRA file holds no lora_A/lora_B weights that One4D can apply.")
    return out


def load_rgb_lora(model: One4DModel, path: str | Path, name: str) -> str:
    """Add a community Wan LoRA as an RGB-only adapter named ``name``; returns the name."""
    source = Path(path).name
    sd = to_peft_keys(read_safetensors(path))
    modules = dict(model.dit.named_modules())
    ranks: dict[str, int] = {}
    for key, value in sd.items():
        mod_name, kind = key.rsplit(".lora_", 1)
        target = modules.get(mod_name)
        if target is None:
            raise One4DInputError(f"LoRA '{source}' targets '{mod_name}', which this backbone lacks; it was made for another model.")
        base = getattr(target, "base_layer", target)
        expect = base.in_features if kind.startswith("A") else base.out_features
        got = value.shape[1] if kind.startswith("A") else value.shape[0]
        if got != expect:
            raise One4DInputError(
                f"LoRA '{source}' does not fit this backbone: {mod_name} has {expect} features, the LoRA {got}. "
                "It was made for another Wan size (e.g. 1.3B vs 14B); pick a LoRA for the loaded model."
            )
        if kind.startswith("A"):
            ranks[mod_name] = int(value.shape[0])
    rank = max(ranks.values())
    cfg = LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=sorted(ranks),
        rank_pattern={re.escape(k) + "$": r for k, r in ranks.items()},
        alpha_pattern={re.escape(k) + "$": r for k, r in ranks.items()},
        lora_dropout=0.0,
    )
    model.add_rgb_adapter(name, cfg)
    set_peft_model_state_dict(model.dit, sd, adapter_name=name)
    return name
