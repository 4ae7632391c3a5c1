"""One4D weight file round trip, metadata checks, and community LoRAs on the RGB branch only."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from one4d.backbone import DIT_PRESETS, DitVariant, build_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.errors import One4DInputError
from one4d.lora_styles import load_rgb_lora, lora_key_style, to_peft_keys
from one4d.weights import build_one4d, read_metadata, save_one4d


def _trained(preset="tiny-inp-clip", links=(0, 1)) -> One4DModel:
    model = One4DModel(build_dit(preset).eval(), DitVariant(DIT_PRESETS[preset], preset), DLCConfig(rank=4, link_layers=links))
    for p in model.adapter_and_link_parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model


def _inputs(model):
    cfg = model.variant.config
    clip = torch.randn(1, 257, cfg["image_dim"]) if cfg["image_dim"] else None
    return (torch.randn(1, 16, 2, 4, 4), torch.randn(1, 16, 2, 4, 4), torch.tensor([500.0]), torch.randn(1, 512, 32),
            torch.ones(1, 4, 2, 4, 4), torch.randn(1, 16, 2, 4, 4), clip)


def test_round_trip_restores_identical_outputs(tmp_path):
    model = _trained()
    save_one4d(model, tmp_path / "one4d.safetensors", {"normalization": "test"})
    meta = read_metadata(tmp_path / "one4d.safetensors")
    assert meta["format"] == "one4d" and json.loads(meta["link_layers"]) == [0, 1] and meta["rank"] == "4"
    assert json.loads(meta["base"])["hidden"] == 32
    fresh_dit = build_dit("tiny-inp-clip").eval()
    fresh_dit.load_state_dict(model.dit.state_dict(), strict=False)  # same base weights
    base_sd = {k.replace(".base_layer", ""): v for k, v in model.dit.state_dict().items() if "lora_" not in k}
    fresh_dit.load_state_dict(base_sd)
    loaded = build_one4d(fresh_dit, DitVariant(DIT_PRESETS["tiny-inp-clip"], "tiny-inp-clip"), tmp_path / "one4d.safetensors")
    x = _inputs(model)
    with torch.no_grad():
        a, b = model(*x), loaded(*x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not list(tmp_path.glob("*.tmp"))


def test_file_for_another_backbone_is_refused_by_name(tmp_path):
    save_one4d(_trained("tiny-inp-clip"), tmp_path / "clip.safetensors")
    with pytest.raises(One4DInputError, match="clip.safetensors.*trained for a tiny-inp-clip backbone.*image attention False"):
        build_one4d(build_dit("tiny-inp"), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), tmp_path / "clip.safetensors")
    save_file({"a": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(One4DInputError, match="not a One4D weight file"):
        build_one4d(build_dit("tiny-inp"), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), tmp_path / "plain.safetensors")


def _community_lora(dit, rank=2, style="original", scale=0.3, alpha=None, factors=None):
    """A random Wan LoRA in the given key style, covering the block linears. ``alpha`` (default: the rank,
    i.e. no scaling) is stored with the original and musubi styles; the diffusers style has no alpha, so its
    up-weights carry the factor ``alpha / rank`` instead: every style then holds the same LoRA. ``factors``,
    if given a dict, receives the diffusers module name -> ``(down, up)`` pair as generated."""
    alpha = float(rank) if alpha is None else float(alpha)
    g = torch.Generator().manual_seed(5)
    sd = {}
    for name, mod in dit.named_modules():
        if "lora_" in name:
            continue
        name = name.replace(".base_layer", "")
        if isinstance(mod, torch.nn.Linear) and name.startswith("blocks.") and (".attn" in name or ".ffn" in name):
            a = torch.randn(rank, mod.in_features, generator=g) * scale
            b = torch.randn(mod.out_features, rank, generator=g) * scale
            sd[name] = (a, b)
    if factors is not None:
        factors.update(sd)
    out = {}
    for name, (a, b) in sd.items():
        orig = (name.replace("attn1", "self_attn").replace("attn2", "cross_attn").replace("to_out.0", "o")
                .replace("to_q", "q").replace("to_k", "k").replace("to_v", "v").replace("add_k_proj", "k_img")
                .replace("add_v_proj", "v_img").replace("ffn.net.0.proj", "ffn.0").replace("ffn.net.2", "ffn.2"))
        if style == "original":
            out[f"diffusion_model.{orig}.lora_down.weight"] = a
            out[f"diffusion_model.{orig}.lora_up.weight"] = b
            out[f"diffusion_model.{orig}.alpha"] = torch.tensor(alpha)
        elif style == "musubi":
            key = "lora_unet_" + orig.replace(".", "_")
            out[f"{key}.lora_down.weight"] = a
            out[f"{key}.lora_up.weight"] = b
            out[f"{key}.alpha"] = torch.tensor(alpha)
        else:
            out[f"transformer.{name}.lora_A.weight"] = a
            out[f"transformer.{name}.lora_B.weight"] = b * (alpha / rank)
    return out


@pytest.mark.parametrize("style", ["original", "musubi", "diffusers"])
def test_community_lora_changes_rgb_only_and_styles_agree(tmp_path, style):
    model = _trained()
    x = _inputs(model)
    with torch.no_grad():
        rgb0, _ = model(*x)
    sd = _community_lora(model.dit, style=style)
    assert lora_key_style(sd) == style
    save_file(sd, tmp_path / "lora.safetensors")
    name = load_rgb_lora(model, tmp_path / "lora.safetensors", "style")
    with torch.no_grad():
        rgb1, _ = model(*x, extras=[(name, 1.0)])
        rgb_off, _ = model(*x, extras=[(name, 0.0)])
        rgb_half, _ = model(*x, extras=[(name, 0.5)])
    assert (rgb1 - rgb0).abs().max() > 1e-3
    assert torch.equal(rgb_off, rgb0)
    assert (rgb_half - rgb0).abs().max() < (rgb1 - rgb0).abs().max()
    # the XYZ branch only sees the LoRA through the links; with links at zero it is untouched
    for lin in [*model.links.xyz_to_rgb, *model.links.rgb_to_xyz]:
        torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    with torch.no_grad():
        _, xyz_a = model(*x)
        _, xyz_b = model(*x, extras=[(name, 1.0)])
    assert torch.equal(xyz_a, xyz_b)


@pytest.mark.parametrize("alpha", [2.0, 1.0])  # rank 2: scale 1, and 0.5 (alpha folded into the weights)
def test_all_lora_styles_convert_to_the_same_weights(alpha):
    """Every key style converts to peft keys of the same modules, and each module's weight delta
    ``up @ down`` equals the generated LoRA's ``alpha / rank * up @ down`` in all three styles."""
    dit = build_dit("tiny-inp-clip")
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    _community_lora(dit, alpha=alpha, factors=factors)
    styles = ("original", "musubi", "diffusers")
    conv = {s: to_peft_keys(_community_lora(dit, style=s, alpha=alpha)) for s in styles}
    expected_keys = {f"{m}.lora_{x}.weight" for m in factors for x in "AB"}
    for style in styles:
        assert set(conv[style]) == expected_keys, style
        for module, (down, up) in factors.items():
            a, b = conv[style][f"{module}.lora_A.weight"], conv[style][f"{module}.lora_B.weight"]
            assert a.shape == down.shape and b.shape == up.shape, (style, module)
            torch.testing.assert_close(b @ a, (alpha / 2) * (up @ down), msg=f"{style}: {module}")
    # the styles agree with each other too (not only with the generated factors)
    for style in ("original", "musubi"):
        for k in conv["diffusers"]:
            if ".lora_B." in k:
                a_key = k.replace("lora_B", "lora_A")
                torch.testing.assert_close(conv[style][k] @ conv[style][a_key], conv["diffusers"][k] @ conv["diffusers"][a_key])


def test_lora_for_another_size_is_refused(tmp_path):
    small = build_dit("tiny-inp")
    big_cfg = dict(DIT_PRESETS["tiny-inp"], num_attention_heads=4)  # hidden 64
    sd = _community_lora(build_dit(big_cfg), style="original")
    save_file(sd, tmp_path / "big.safetensors")
    model = One4DModel(small, DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    with pytest.raises(One4DInputError, match="big.safetensors.*another Wan size"):
        load_rgb_lora(model, tmp_path / "big.safetensors", "big")
    save_file({"foo.bar": torch.zeros(1)}, tmp_path / "junk.safetensors")
    with pytest.raises(One4DInputError, match="not a Wan LoRA"):
        load_rgb_lora(model, tmp_path / "junk.safetensors", "junk")
