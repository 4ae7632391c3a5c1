"""Files given as community LoRAs that are not Wan2.1 LoRAs get an error saying what they are, from their own keys
and shapes (generated tiny files in the trainers' real key layouts, at Wan's real hidden sizes)."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from one4d.backbone import DIT_PRESETS, DitVariant, build_dit, read_safetensors
from one4d.dlc import DLCConfig, One4DModel
from one4d.errors import One4DInputError
from one4d.lora_styles import load_rgb_lora, lora_key_style, to_peft_keys


def _sd(*keys: str) -> dict[str, torch.Tensor]:
    return {k: torch.zeros(2, 2) for k in keys}


@pytest.mark.parametrize("keys, match", [
    (("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "lora_te_text_model_encoder_layers_0_mlp_fc1.alpha"),
     "Stable Diffusion 1.x/2.x LoRA.*lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"),
    (("lora_unet_input_blocks_4_1_proj_in.lora_up.weight", "lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"),
     "an SDXL LoRA"),
    (("transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight",), "a Flux \\(or HunyuanVideo\\) LoRA"),
    (("diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight", "diffusion_model.txt_in.individual_token_refiner.blocks.0.mlp.fc1.lora_A.weight"),
     "a HunyuanVideo LoRA"),
    (("blocks.0.self_attn.q.weight", "blocks.0.self_attn.q.bias", "head.head.weight"),
     "not a LoRA but a full model checkpoint.*'blocks.0.self_attn.q.bias'"),
])
def test_files_that_are_not_wan_loras_are_named_by_their_keys(keys, match):
    with pytest.raises(One4DInputError, match=match):
        lora_key_style(_sd(*keys))


def test_wan_loras_keep_their_styles():
    assert lora_key_style(_sd("lora_unet_blocks_0_self_attn_q.lora_down.weight")) == "musubi"
    assert lora_key_style(_sd("diffusion_model.blocks.0.self_attn.q.lora_A.weight")) == "original"
    assert lora_key_style(_sd("blocks.0.attn1.to_q.lora_A.weight")) == "diffusers"


def test_a_conversion_failure_names_the_files_real_keys():
    bad = {"lora_unet_blocks_0_self_attn_q.lora_down.weight": torch.zeros(2, 4)}  # no lora_up: the converter fails
    with pytest.raises(One4DInputError, match="first keys: 'lora_unet_blocks_0_self_attn_q.lora_down.weight'") as err:
        to_peft_keys(bad)
    assert "lora_up" not in str(err.value)  # the converter's own missing key is not presented as the file's


# Wan LoRA key layouts as the trainers write them, for a block's attention and feed-forward layers
_LAYOUTS = {
    "original": ("diffusion_model.blocks.{i}.{layer}.lora_A.weight", "diffusion_model.blocks.{i}.{layer}.lora_B.weight", None),
    "musubi": ("lora_unet_blocks_{i}_{flat}.lora_down.weight", "lora_unet_blocks_{i}_{flat}.lora_up.weight",
               "lora_unet_blocks_{i}_{flat}.alpha"),
    "diffusers": ("transformer.blocks.{i}.{diffusers}.lora_A.weight", "transformer.blocks.{i}.{diffusers}.lora_B.weight", None),
}
_LAYERS = {"self_attn.q": "attn1.to_q", "self_attn.k": "attn1.to_k", "cross_attn.v": "attn2.to_v", "ffn.0": "ffn.net.0.proj"}
_WAN = {"Wan2.1 1.3B": (1536, 8960), "Wan2.2 TI2V-5B": (3072, 14336), "Wan2.1 14B": (5120, 13824)}  # hidden, FFN


def _wan_lora_file(path, style: str, model: str, blocks: int = 2, rank: int = 2) -> str:
    """A rank-2 LoRA of a Wan model's first blocks in a trainer's real key layout, saved as safetensors; returns
    the file's first attention down key (the one a size message should name)."""
    hidden, ffn = _WAN[model]
    down_key, up_key, alpha_key = _LAYOUTS[style]
    sd = {}
    for i in range(blocks):
        for layer, diffusers in _LAYERS.items():
            names = dict(i=i, layer=layer, flat=layer.replace(".", "_"), diffusers=diffusers)
            out = ffn if layer == "ffn.0" else hidden
            sd[down_key.format(**names)] = torch.randn(rank, hidden, dtype=torch.float16)
            sd[up_key.format(**names)] = torch.randn(out, rank, dtype=torch.float16)
            if alpha_key:
                sd[alpha_key.format(**names)] = torch.tensor(float(rank))
    save_file(sd, str(path))
    return sorted(k for k in sd if "attn" in k and ("lora_A" in k or "lora_down" in k))[0]


@pytest.mark.parametrize("style", sorted(_LAYOUTS))
def test_a_wan22_5b_lora_is_named_with_the_key_that_shows_its_size(tmp_path, style):
    path = tmp_path / "wan22_5b.safetensors"
    key = _wan_lora_file(path, style, "Wan2.2 TI2V-5B")
    sd = read_safetensors(path)
    with pytest.raises(One4DInputError, match=f"a Wan2.2 TI2V-5B LoRA, not a Wan2.1 LoRA: its '{key}' is \\[2, 3072\\], hidden size 3072"):
        lora_key_style(sd)
    for model in ("Wan2.1 1.3B", "Wan2.1 14B"):  # the same layout at Wan2.1's sizes is accepted
        _wan_lora_file(path, style, model)
        assert lora_key_style(read_safetensors(path)) == style


def test_a_14b_lora_on_another_size_says_wan22_a14b_cannot_be_told_apart(tmp_path):
    """Wan2.2 A14B LoRAs have Wan2.1 14B's keys and shapes: the size message names both and says so."""
    path = tmp_path / "wan_14b.safetensors"
    key = _wan_lora_file(path, "original", "Wan2.1 14B", blocks=1)
    model = One4DModel(build_dit("tiny-inp"), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    with pytest.raises(One4DInputError, match=f"another Wan size \\(its '{key}' has hidden size 5120: Wan2.1 14B or "
                                              "Wan2.2 A14B \\(same layers and sizes: their LoRAs cannot be told apart\\)\\)"):
        load_rgb_lora(model, path, "big")
