"""Files given as community LoRAs that are not Wan2.1 LoRAs get an error saying what they are, from their own keys."""
from __future__ import annotations

import pytest
import torch

from one4d.errors import One4DInputError
from one4d.lora_styles import lora_key_style, to_peft_keys


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
