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


_LORA_KEY = re.compile(r"lora_(A|B|down|up)\b|\.alpha$|lora_(unet|te)")
# (pattern on any key, what the file is): other model families' LoRAs, named by their own key layout
_OTHER_FAMILIES = (
    (re.compile(r"individual_token_refiner|txt_in\.individual"), "a HunyuanVideo LoRA"),
    (re.compile(r"double_blocks|single_blocks|single_transformer_blocks"), "a Flux (or HunyuanVideo) LoRA"),
    (re.compile(r"lora_te2_|input_blocks|output_blocks|add_embedding"), "an SDXL LoRA"),
    (re.compile(r"lora_te_|down_blocks|up_blocks|mid_block"), "a Stable Diffusion 1.x/2.x LoRA"),
)


def _first_keys(keys: list[str], n: int = 3) -> str:
    return ", ".join(repr(k) for k in sorted(keys)[:n])


def lora_key_style(sd: dict[str, torch.Tensor]) -> str:
    """``musubi``, ``original`` or ``diffusers``. Anything else raises an error that says what the file is
    instead, from its own keys: not a LoRA at all (a full checkpoint), or a LoRA for another model family."""
    keys = list(sd)
    if not any(_LORA_KEY.search(k) for k in keys) and any(k.endswith((".weight", ".bias")) for k in keys):
        raise One4DInputError(
            f"this file is not a LoRA but a full model checkpoint (no lora_A/lora_B/lora_down/lora_up weights; first keys: "
            f"{_first_keys(keys)}); put Wan DiT files in models/diffusion_models and load them with One4D Load Backbone."
        )
    for pattern, family in _OTHER_FAMILIES:
        if any(pattern.search(k) for k in keys):
            raise One4DInputError(
                f"this file is {family}, not a Wan2.1 LoRA (first keys: {_first_keys(keys)}); pick a LoRA made for Wan2.1."
            )
    if any(re.match(r"lora_unet_blocks_\d+_", k) for k in keys):
        return "musubi"
    if any(re.search(r"(self_attn|cross_attn)\.[qkvo]", k) or ".ffn.0." in k or ".ffn.2." in k for k in keys):
        return "original"
    if any(".lora_A." in k and (".attn1." in k or ".attn2." in k or ".ffn." in k) for k in keys):
        return "diffusers"
    raise One4DInputError(
        "this file is not a Wan LoRA in a known key style (ComfyUI/original, musubi-tuner or diffusers); "
        f"first keys: {_first_keys(keys)}."
    )


def to_peft_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert any supported Wan LoRA key style to adapter-free peft keys (``blocks.0.attn1.to_q.lora_A.weight``)."""
    style = lora_key_style(sd)
    keys = list(sd)
    try:
        if style == "musubi":
            sd = _convert_musubi_wan_lora_to_diffusers(dict(sd))
        elif style == "original":
            sd = {k if k.startswith("diffusion_model.") else "diffusion_model." + k: v for k, v in sd.items()}
            sd = _convert_non_diffusers_wan_lora_to_diffusers(sd)
    except (KeyError, ValueError, IndexError):
        raise One4DInputError(
            f"this {style}-style LoRA has keys the Wan2.1 converter cannot read (the file's first keys: {_first_keys(keys)}); "
            "it may be for another model family (Wan2.2, VACE) or hold layers other than the DiT blocks."
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
