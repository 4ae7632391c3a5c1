"""fp8 weights on a device that cannot hold them (MPS, a PyTorch without float8): simulated by monkeypatching
the capability check, the weights are up-cast block by block at load with one notice, outputs equal the
layerwise-cast model's, and the nodes sample without ever putting an fp8 tensor on that device."""
from __future__ import annotations

import logging

import pytest
import torch
from safetensors.torch import save_file

import nodes
from ckpt_factory import fp8_state_dict, original_state_dict
from nodes import cache, comfy_bridge
from one4d import precision
from one4d.backbone import DIT_PRESETS, DitVariant, build_dit, build_vae, load_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.weights import save_one4d

NOTICE = "cannot hold fp8 weights"


def _inputs(cfg):
    g = torch.Generator().manual_seed(3)
    return (torch.randn(1, cfg["in_channels"], 2, 4, 4, generator=g), torch.tensor([700.0]),
            torch.randn(1, 512, cfg["text_dim"], generator=g))


def _run(model, inputs):
    x, t, ctx = inputs
    with torch.no_grad():
        return model(x, t, ctx, None, return_dict=False)[0].float()


def _fp8_file(path):
    torch.manual_seed(0)
    ref = build_dit("tiny-inp").eval()
    save_file(original_state_dict(fp8_state_dict(ref.state_dict(), scaled=False), "model.diffusion_model."), path)
    return path


def _no_fp8_device(monkeypatch):
    monkeypatch.setattr(precision, "fp8_storage_supported", lambda device: False)


def _notices(caplog):
    return [r for r in caplog.records if NOTICE in r.getMessage()]


def test_capability_check():
    assert precision.fp8_storage_supported("cpu") is bool(precision.FP8_DTYPES)
    assert precision.fp8_storage_supported(torch.device("mps")) is False  # MPS has no float8 dtypes


def test_fp8_file_is_upcast_block_by_block_with_one_notice(tmp_path, monkeypatch, caplog):
    path = _fp8_file(tmp_path / "fp8.safetensors")
    kept, _ = load_dit(path, dtype=torch.float32, keep_fp8=True)
    assert kept.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn  # the device can hold fp8: layerwise casting

    _no_fp8_device(monkeypatch)
    converted = []
    real = precision.upcast_fp8

    def spy(model, dtype, blocks=None):
        for block in model.blocks:  # record, block by block, what was fp8 when the up-cast began
            converted.append(precision.has_fp8(block))
        return real(model, dtype, blocks)

    monkeypatch.setattr(precision, "upcast_fp8", spy)
    with caplog.at_level(logging.WARNING, logger="one4d"):
        model, _ = load_dit(path, dtype=torch.float32, keep_fp8=True, compute_device="mps")
    assert converted == [True, True]
    assert not precision.has_fp8(model), "no fp8 tensor is left for a device that cannot hold it"
    assert not any(hasattr(m, "_diffusers_hook") for m in model.modules()), "no layerwise casting hooks (they cast back to fp8)"
    notes = _notices(caplog)
    assert len(notes) == 1 and "\n" not in notes[0].getMessage() and "fp8.safetensors" in notes[0].getMessage()
    assert "mps" in notes[0].getMessage() and "float32" in notes[0].getMessage()
    dequantized, _ = load_dit(path, dtype=torch.float32, keep_fp8=False)  # the file's fp8 values, up-cast at load
    inputs = _inputs(DIT_PRESETS["tiny-inp"])
    assert torch.equal(_run(model, inputs), _run(dequantized, inputs))


@pytest.fixture()
def fp8_models(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    root = tmp_path / "models"
    for sub in ("diffusion_models", "vae", "one4d"):
        (root / sub).mkdir(parents=True)
    _fp8_file(root / "diffusion_models" / "tiny_fp8.safetensors")
    torch.manual_seed(0)
    dit = build_dit("tiny-inp").eval()
    save_file(original_state_dict(dit.state_dict(), "model.diffusion_model."), root / "diffusion_models" / "tiny_fp32.safetensors")
    save_file(build_vae("tiny-vae").state_dict(), root / "vae" / "tiny_vae.safetensors")
    model = One4DModel(dit, DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4, link_layers=(0, 1)))
    save_one4d(model, root / "one4d" / "tiny_one4d.safetensors")
    cache.clear_cache()
    yield root
    cache.clear_cache()


def _sample(dit_name, storage):
    handle = nodes.One4DLoadBackbone().load(dit_name, "tiny_vae.safetensors", "fp32", storage)[0]
    handle = nodes.One4DApplyPointmapLoRA().apply(handle, "tiny_one4d.safetensors")[0]
    images = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    cond = nodes.One4DBuildConditioning().build(handle, width=64, height=64, length=17, frame_indices="first", prompt="",
                                                negative_prompt="", images=images, positive=[[torch.randn(1, 5, 32, generator=torch.Generator().manual_seed(2)), {}]])[0]
    rgb, _ = nodes.One4DSample().sample(handle, cond, seed=0, steps=1, guidance=1.0, shift=3.0, scheduler="unipc")
    return handle, rgb["samples"]


def _device_without_fp8(monkeypatch):
    """A compute device like MPS: loading a model that holds an fp8 tensor fails, as ``.to('mps')`` does."""
    _no_fp8_device(monkeypatch)
    real = comfy_bridge.load_models

    def load_models(patchers, memory_required=0):
        for p in patchers:
            bad = [n for n, t in p.model.named_parameters() if t.dtype in precision.FP8_DTYPES]
            if bad:
                raise TypeError(f"Trying to convert Float8_e4m3fn to the MPS backend but it does not have support for that dtype ({bad[0]})")
        return real(patchers, memory_required)

    monkeypatch.setattr(comfy_bridge, "load_models", load_models)


@pytest.mark.parametrize("dit_name, storage", [("tiny_fp8.safetensors", "auto"), ("tiny_fp32.safetensors", "fp8_e4m3fn")])
def test_nodes_sample_with_fp8_settings_on_a_device_without_fp8(fp8_models, monkeypatch, caplog, dit_name, storage):
    _, on_cpu = _sample(dit_name, storage)  # this machine holds fp8: layerwise casting
    assert precision.has_fp8(cache._DIT.dit)
    cache.clear_cache()
    _, full = _sample(dit_name, "full")  # every weight in the compute dtype (an fp8 file's values up-cast at load)
    cache.clear_cache()
    _device_without_fp8(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="one4d"):
        handle, got = _sample(dit_name, storage)
    assert not precision.has_fp8(handle.model()), "nothing fp8 reaches the device"
    assert len(_notices(caplog)) == 1, [r.getMessage() for r in caplog.records]
    assert torch.isfinite(got).all()
    assert torch.equal(got, full), "as with every weight in the compute dtype"
    assert not torch.equal(got, on_cpu)  # (where fp8 storage works, it is used)
