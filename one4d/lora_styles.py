"""Community Wan LoRA files stacked on the RGB branch only.

Key styles accepted: ComfyUI / original Wan (``diffusion_model.blocks.0.self_attn.q.lora_A.weight`` or
``lora_down``/``lora_up`` with ``.alpha``), musubi-tuner (``lora_unet_blocks_0_self_attn_q.lora_down.weight``)
and diffusers/peft (``[transformer.]blocks.0.attn1.to_q.lora_A.weight``). Conversion is diffusers' own
(it folds alpha into the weights), then the LoRA becomes an extra peft adapter whose delta the two-branch
forward adds to the RGB half of the batch only, with a strength.

Files that are not Wan2.1 LoRAs are named for what they are, from their own keys and shapes: a full
checkpoint, another family's LoRA (SD1.x/2.x, SDXL, Flux, HunyuanVideo), or a Wan2.2 TI2V-5B LoRA. Wan
LoRAs share one key layout across sizes, so the model size is read from the hidden size in the shapes (the
input width of the blocks' attention, :func:`lora_hidden_size`): 1536 for Wan2.1 1.3B, 5120 for Wan2.1 14B,
3072 for Wan2.2 TI2V-5B (which also has 48 latent channels instead of 16, visible only in the patch
embedding and head that LoRAs rarely train). Wan2.2's A14B experts have the same layers and sizes as
Wan2.1 14B, so their LoRAs cannot be told from Wan2.1 14B LoRAs by their keys or shapes; they load as
such, and the size mismatch message says so.
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
# a block attention layer's LoRA down weight [rank, hidden size], in the original, musubi and diffusers styles
_ATTENTION_DOWN = re.compile(r"(self_attn|cross_attn)[._][qkvo]\.lora_(A|down)\.weight$|attn[12]\.to_(q|k|v)\.lora_A\.weight$")
WAN_HIDDEN_SIZES = {1536: "Wan2.1 1.3B", 3072: "Wan2.2 TI2V-5B",
                    5120: "Wan2.1 14B or Wan2.2 A14B (same layers and sizes: their LoRAs cannot be told apart)"}
# (pattern on any key, what the file is): other model families' LoRAs, named by their own key layout
_OTHER_FAMILIES = (
    (re.compile(r"individual_token_refiner|txt_in\.individual"), "a HunyuanVideo LoRA"),
    (re.compile(r"double_blocks|single_blocks|single_transformer_blocks"), "a Flux (or HunyuanVideo) LoRA"),
    (re.compile(r"lora_te2_|input_blocks|output_blocks|add_embedding"), "an SDXL LoRA"),
    (re.compile(r"lora_te_|down_blocks|up_blocks|mid_block"), "a Stable Diffusion 1.x/2.x LoRA"),
)


def _first_keys(keys: list[str], n: int = 3) -> str:
    return ", ".join(repr(k) for k in sorted(keys)[:n])


def lora_hidden_size(sd: dict[str, torch.Tensor]) -> tuple[int, str] | None:
    """The hidden size a Wan LoRA was made for and the file's key it was read from (the first block attention
    down weight, ``[rank, hidden]``); None when the file has no such key."""
    for key in sorted(sd):
        if _ATTENTION_DOWN.search(key) and sd[key].ndim == 2:
            return int(sd[key].shape[1]), key
    return None


def _check_wan21_size(sd: dict[str, torch.Tensor]) -> None:
    """Refuse a Wan2.2 TI2V-5B LoRA (hidden size 3072), naming the file's key that shows it."""
    found = lora_hidden_size(sd)
    if found is not None and found[0] == 3072:
        raise One4DInputError(
            f"this file is a {WAN_HIDDEN_SIZES[3072]} LoRA, not a Wan2.1 LoRA: its '{found[1]}' is "
            f"{list(sd[found[1]].shape)}, hidden size 3072 (Wan2.1 has 1536 for 1.3B and 5120 for 14B); pick a LoRA made "
            "for Wan2.1. (Wan2.2 A14B LoRAs have the same keys and sizes as Wan2.1 14B ones: those load.)"
        )


def lora_key_style(sd: dict[str, torch.Tensor]) -> str:
    """``musubi``, ``original`` or ``diffusers``. Anything else raises an error that says what the file is
    instead, from its own keys: not a LoRA at all (a full checkpoint), a LoRA for another model family, or a
    Wan2.2 TI2V-5B LoRA (module docstring)."""
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
    _check_wan21_size(sd)
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


def _made_for(sd: dict[str, torch.Tensor]) -> str:
    """The Wan model a LoRA's hidden size belongs to, with the key it was read from, for size mismatch messages."""
    found = lora_hidden_size(sd)
    if found is None:
        return "e.g. 1.3B vs 14B"
    model = WAN_HIDDEN_SIZES.get(found[0], "no Wan2.1 size")
    return f"its '{found[1]}' has hidden size {found[0]}: {model}"


def load_rgb_lora(model: One4DModel, path: str | Path, name: str) -> str:
    """Add a community Wan LoRA as an RGB-only adapter named ``name``; returns the name."""
    source = Path(path).name
    file_sd = read_safetensors(path)
    sd = to_peft_keys(file_sd)
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
                f"It was made for another Wan size ({_made_for(file_sd)}); pick a LoRA for the loaded model."
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
