"""Backbone presets, variant detection and single-file loading in every key style and dtype."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from ckpt_factory import fp8_state_dict, original_state_dict
from one4d.backbone import (
    DIT_PRESETS,
    build_dit,
    build_vae,
    detect_dit_variant,
    load_dit,
    load_dit_state_dict,
    load_vae,
    to_diffusers_keys,
)
from one4d.errors import One4DInputError


def _inputs(cfg, n=1, t=2, h=4, w=4):
    ctx = torch.randn(n, 512, cfg["text_dim"])
    clip = torch.randn(n, 257, cfg["image_dim"]) if cfg["image_dim"] else None
    return torch.randn(n, cfg["in_channels"], t, h, w), torch.tensor([700.0] * n), ctx, clip


def _run(model, inputs):
    x, ts, ctx, clip = inputs
    with torch.no_grad():
        return model(x, ts, ctx, clip, return_dict=False)[0].float()


@pytest.mark.parametrize("preset", ["tiny-inp", "tiny-inp-clip", "tiny-t2v"])
def test_original_and_diffusers_files_give_identical_outputs(tmp_path, preset):
    ref = build_dit(preset).eval()
    sd = {k: v.contiguous() for k, v in ref.state_dict().items()}
    save_file(sd, tmp_path / "diffusers.safetensors")
    save_file(original_state_dict(sd), tmp_path / "original.safetensors")
    save_file(original_state_dict(sd, "model.diffusion_model."), tmp_path / "comfy.safetensors")
    inputs = _inputs(DIT_PRESETS[preset])
    expect = _run(ref, inputs)
    for name in ("diffusers", "original", "comfy"):
        model, variant = load_dit(tmp_path / f"{name}.safetensors", dtype=torch.float32)
        assert variant.preset == preset
        assert torch.equal(_run(model, inputs), expect), name


@pytest.mark.parametrize("kind", ["bf16", "fp16", "fp8", "scaled_fp8", "fp8_keep"])
def test_low_precision_files_load_close_to_fp32(tmp_path, kind):
    ref = build_dit("tiny-inp-clip").eval()
    sd = {k: v.contiguous() for k, v in ref.state_dict().items()}
    if kind in ("bf16", "fp16"):
        dt = torch.bfloat16 if kind == "bf16" else torch.float16
        sd = {k: v.to(dt) for k, v in sd.items()}
    else:
        sd = fp8_state_dict(sd, scaled=kind == "scaled_fp8")
    save_file(original_state_dict(sd, "model.diffusion_model.") if kind != "fp8" else original_state_dict(sd), tmp_path / "m.safetensors")
    model, variant = load_dit(tmp_path / "m.safetensors", dtype=torch.float32, keep_fp8=kind == "fp8_keep")
    assert variant.preset == "tiny-inp-clip"
    if kind == "fp8_keep":
        assert model.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    elif kind.endswith("fp8"):
        assert model.blocks[0].attn1.to_q.weight.dtype == torch.float32
    inputs = _inputs(DIT_PRESETS["tiny-inp-clip"])
    expect, got = _run(ref, inputs), _run(model, inputs)
    rel = (got - expect).norm() / expect.norm()
    assert rel < (0.02 if kind in ("bf16", "fp16") else 0.15), float(rel)


@pytest.mark.parametrize("preset", [name for name in DIT_PRESETS if not name.startswith("tiny")])
@pytest.mark.parametrize("style", ["diffusers", "original", "comfy"])
def test_real_size_key_names_and_shapes_are_detected_and_load(preset, style):
    """Real 14B / 1.3B names and shapes on the meta device: conversion, detection and a strict load.
    Every real preset is detected as itself: two presets with the same shapes could not be told apart."""
    sd = build_dit(preset, device="meta").state_dict()
    if style != "diffusers":
        sd = original_state_dict(sd, "model.diffusion_model." if style == "comfy" else "")
    conv = to_diffusers_keys(sd)
    variant = detect_dit_variant(conv, "generated")
    assert variant.preset == preset
    assert variant.config == DIT_PRESETS[preset]
    target = build_dit(variant.config, device="meta")
    load_dit_state_dict(target, conv, "generated")


def test_bad_files_name_the_file_and_expectation(tmp_path):
    with pytest.raises(One4DInputError, match="does not exist"):
        load_dit(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(One4DInputError, match="junk.safetensors"):
        load_dit(tmp_path / "junk.safetensors")
    good = build_dit("tiny-inp").state_dict()
    save_file({k: v.contiguous() for k, v in good.items()}, tmp_path / "good.safetensors")
    data = (tmp_path / "good.safetensors").read_bytes()
    (tmp_path / "trunc.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(One4DInputError, match="trunc.safetensors"):
        load_dit(tmp_path / "trunc.safetensors")
    save_file({"foo.weight": torch.zeros(2, 2)}, tmp_path / "other.safetensors")
    with pytest.raises(One4DInputError, match="not a Wan2.1 video DiT"):
        load_dit(tmp_path / "other.safetensors")
    partial = {k: v.contiguous() for k, v in good.items() if not k.startswith("blocks.1.")}
    partial["blocks.1.attn1.to_q.weight"] = good["blocks.1.attn1.to_q.weight"].contiguous()
    save_file(partial, tmp_path / "partial.safetensors")
    with pytest.raises(One4DInputError, match="partial.safetensors"):
        load_dit(tmp_path / "partial.safetensors")


def test_vae_file_round_trip_and_errors(tmp_path):
    vae = build_vae("tiny-vae").eval()
    save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, tmp_path / "vae.safetensors")
    loaded = load_vae(tmp_path / "vae.safetensors")
    x = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        a = vae.encode(x).latent_dist.mean
        b = loaded.encode(x).latent_dist.mean
    assert torch.equal(a, b)
    save_file({"x": torch.zeros(1)}, tmp_path / "notvae.safetensors")
    with pytest.raises(One4DInputError, match="not a Wan2.1 VAE"):
        load_vae(tmp_path / "notvae.safetensors")
