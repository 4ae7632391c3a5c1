"""fp8 weights on a device that cannot hold them (MPS, a PyTorch without float8): simulated by monkeypatching
the capability check, the weights are up-cast block by block at load with one notice, outputs equal the
layerwise-cast model's, and the nodes sample without ever putting an fp8 tensor on that device. And the guard for
torch's CPU bf16 Conv3d gradients: float32 above 32 x 32 frames, the shapes that break unguarded."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from copy import deepcopy
from pathlib import Path

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


def test_conv3d_runs_in_float32_under_cpu_autocast_above_32x32_frames():
    """Guarded Conv3d layers compute in float32 under CPU autocast on frames larger than 32 x 32 (unguarded: bf16),
    with float32's gradient; smaller frames keep bf16; outside autocast nothing changes."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(8, 4, 1), torch.nn.Conv3d(4, 4, 3, padding=1))
    reference = torch.nn.Sequential(*(torch.nn.Conv3d(m.in_channels, m.out_channels, m.kernel_size, padding=m.padding)
                                      for m in model))
    reference.load_state_dict(model.state_dict())
    big, small = torch.randn(1, 8, 2, 40, 33), torch.randn(1, 8, 2, 32, 32)
    assert precision.conv3d_in_fp32_above(model) == 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(big).dtype == torch.float32 and reference(big).dtype == torch.bfloat16
        assert model(small).dtype == torch.bfloat16
    model(big).square().sum().backward()
    reference(big).square().sum().backward()
    for m, r in zip(model, reference):
        torch.testing.assert_close(m.weight.grad, r.weight.grad)
    assert torch.equal(model(small), reference(small))
    copy = deepcopy(model)  # a copy's layers run their own weights, still guarded
    with torch.no_grad():
        copy[0].weight.add_(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert copy(big).dtype == torch.float32 and not torch.equal(copy(big), model(big))


def test_the_bf16_conv3d_gradients_that_go_wrong_in_torch_run_guarded(tmp_path):
    """Shapes that break torch 2.13's CPU bf16 Conv3d weight gradient on AMX CPUs (one thread, 64 x 64 frames: 64 -> 32
    channels 1x1x1 aborts the process, 32 -> 32 3x3x3 gives NaN) run guarded with finite gradients; in a child
    process, so a regression fails this test only."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import torch\nfrom one4d.precision import conv3d_in_fp32_above\ntorch.set_num_threads(1)\n"
        "for cin, cout, k in ((64, 32, 1), (32, 32, 3)):\n"
        "    conv = torch.nn.Conv3d(cin, cout, k, padding=k // 2)\n    conv3d_in_fp32_above(conv)\n"
        "    for _ in range(2):\n"
        "        with torch.autocast('cpu', dtype=torch.bfloat16):\n"
        "            y = conv(torch.randn(1, cin, 3, 64, 64))\n"
        "        y.float().square().mean().backward()\n"
        "    print('finite', bool(torch.isfinite(conv.weight.grad).all()))\n")
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=root, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert run.returncode == 0 and run.stdout.split() == ["finite", "True"] * 2, (run.returncode, run.stdout, run.stderr[-500:])
