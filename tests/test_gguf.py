"""GGUF DiT files as ComfyUI-GGUF users keep them: a tiny Wan2.1 DiT written by the gguf package's own writer
with the original Wan key names, Q8_0 and Q4_K weights, F16/F32 small tensors and a reshaped 5-D patch
embedding with its ``comfy.gguf.orig_shape`` record. Loaded through the library and through the loader node
(listed from models/diffusion_models), dequantized to the compute dtype; a Q4_K tensor is built from known
values so its dequantization is checked against numbers computed here, not against the library itself."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import nodes
from ckpt_factory import to_original_key
from nodes import cache, comfy_bridge
from one4d.backbone import INP_CHANNELS, DitVariant, build_dit, build_vae, dit_config, load_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.errors import One4DInputError
from one4d.gguf_weights import INSTALL_HINT, read_gguf
from one4d.weights import save_one4d

try:
    import gguf
except ImportError:  # CI installs the test extra, which has gguf: there a missing package is a failure
    if os.environ.get("CI"):
        raise
    gguf = None
needs_gguf = pytest.mark.skipif(gguf is None, reason=f"the gguf package is not installed: {INSTALL_HINT} (or pip install -e '.[test]')")

# ffn 256: the FFN's output projection has rows of 256 values, one Q4_K block (ComfyUI-GGUF quantizes such rows)
CONFIG = dit_config(32, 2, 256, 2, INP_CHANNELS, image=True, text_dim=32)


def q4_k_rows(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` Q4_K blocks (ggml's block_q4_K: d, dmin as f16, 12 bytes of 6-bit scales and mins, 128 bytes of
    4-bit quants) with d = 1/16, dmin = 1/2 and every scale and min 1, so each value is q/16 - 1/2; returns the
    raw bytes [rows, 144] and the values they stand for [rows, 256]."""
    rng = np.random.default_rng(7)
    q = rng.integers(0, 16, size=(rows, 256), dtype=np.uint8)
    d = np.array([1 / 16, 1 / 2], np.float16).view(np.uint8)
    scales = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0x11, 0x11, 0x11, 0x11], np.uint8)
    blocks = []
    for row in q:
        qs = np.empty(128, np.uint8)
        for c in range(4):  # each 64 values: the low nibbles hold the first 32, the high nibbles the next 32
            qs[32 * c:32 * c + 32] = row[64 * c:64 * c + 32] | (row[64 * c + 32:64 * c + 64] << 4)
        blocks.append(np.concatenate([d, scales, qs]))
    return np.stack(blocks), q.astype(np.float32) / 16 - 0.5


def write_wan_gguf(path, sd: dict[str, torch.Tensor], arch: str = "wan") -> dict[str, torch.Tensor]:
    """Write ``sd`` (diffusers keys) as a ComfyUI-GGUF-style Wan file; returns the float32 values it stores,
    by diffusers key."""
    writer = gguf.GGUFWriter(str(path), arch=arch)
    stored = {}
    for key, value in sd.items():
        name = to_original_key(key)
        data = value.float().numpy()
        if key.endswith("ffn.net.2.weight"):  # rows of 256: Q4_K with known values
            raw, values = q4_k_rows(data.shape[0])
            writer.add_tensor(name, raw, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
            stored[key] = torch.from_numpy(values)
        elif data.ndim == 5:  # GGUF holds 4 dimensions at most: reshaped, the real shape in the metadata
            writer.add_array(f"comfy.gguf.orig_shape.{name}", [int(d) for d in data.shape])
            half = data.astype(np.float16)
            writer.add_tensor(name, half.reshape(-1, 256))
            stored[key] = torch.from_numpy(half.astype(np.float32))
        elif data.ndim == 2 and data.shape[1] % 32 == 0:
            raw = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(name, raw, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            stored[key] = torch.from_numpy(gguf.quants.dequantize(raw, gguf.GGMLQuantizationType.Q8_0))
            assert np.abs(stored[key].numpy() - data).max() <= np.abs(data).max() / 127 + 1e-6  # a real Q8_0
        else:
            writer.add_tensor(name, data)
            stored[key] = torch.from_numpy(data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return stored


def _tiny_dit():
    torch.manual_seed(0)
    return build_dit(CONFIG).eval()


def _run(model, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, INP_CHANNELS, 2, 4, 4, generator=g)
    ctx, clip = torch.randn(1, 512, 32, generator=g), torch.randn(1, 257, 32, generator=g)
    with torch.no_grad():
        return model(x, torch.tensor([700.0]), ctx, clip, return_dict=False)[0].float()


@needs_gguf
def test_gguf_file_loads_dequantized_in_the_wan_key_layout(tmp_path):
    ref = _tiny_dit()
    stored = write_wan_gguf(tmp_path / "wan_tiny-Q4_K_M.gguf", ref.state_dict())
    reader = gguf.GGUFReader(str(tmp_path / "wan_tiny-Q4_K_M.gguf"))
    kinds = {t.tensor_type.name for t in reader.tensors}
    assert {"Q8_0", "Q4_K", "F16", "F32"} <= kinds and all(len(t.shape) <= 4 for t in reader.tensors)
    assert any(t.name == "blocks.0.self_attn.q.weight" for t in reader.tensors), "original Wan key names"

    model, variant = load_dit(tmp_path / "wan_tiny-Q4_K_M.gguf", dtype=torch.float32)
    assert variant.config == CONFIG and variant.has_image_attention
    got = model.state_dict()
    for key, value in stored.items():
        assert torch.equal(got[key], value.reshape(got[key].shape)), key
    q4 = got["blocks.1.ffn.net.2.weight"]
    assert q4.shape == (32, 256) and set(torch.unique(q4 * 16 + 8).tolist()) <= set(range(16))
    expect = build_dit(CONFIG).eval()
    expect.load_state_dict({k: v.reshape(got[k].shape) for k, v in stored.items()})
    assert torch.equal(_run(model), _run(expect))

    bf16, _ = load_dit(tmp_path / "wan_tiny-Q4_K_M.gguf", dtype=torch.bfloat16)
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}, "dequantized to the compute dtype"


@needs_gguf
def test_gguf_prefix_and_errors(tmp_path):
    sd = _tiny_dit().state_dict()
    writer = gguf.GGUFWriter(str(tmp_path / "prefixed.gguf"), arch="wan")
    for key, value in sd.items():
        writer.add_tensor("model.diffusion_model." + to_original_key(key), value.float().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert set(read_gguf(tmp_path / "prefixed.gguf", torch.float32)) == {"model.diffusion_model." + to_original_key(k) for k in sd}
    assert load_dit(tmp_path / "prefixed.gguf", dtype=torch.float32)[1].config == CONFIG

    write_wan_gguf(tmp_path / "llm.gguf", {"token_embd.weight": torch.zeros(4, 32)}, arch="llama")
    with pytest.raises(One4DInputError, match="'llm.gguf' is a GGUF file of a 'llama' model, not of a Wan2.1 DiT"):
        load_dit(tmp_path / "llm.gguf")
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\0" * 40)
    with pytest.raises(One4DInputError, match="'junk.gguf' is not a readable GGUF file"):
        load_dit(tmp_path / "junk.gguf")
    with pytest.raises(One4DInputError, match="does not exist"):
        load_dit(tmp_path / "missing.gguf")


def test_without_the_gguf_package_a_gguf_file_gets_the_install_hint(tmp_path, monkeypatch):
    (tmp_path / "wan.gguf").write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "gguf", None)  # as if not installed: ``import gguf`` raises ImportError
    with pytest.raises(One4DInputError, match="needs the 'gguf' Python package, which is not installed: pip install gguf"):
        load_dit(tmp_path / "wan.gguf")


@needs_gguf
def test_loader_node_lists_and_samples_a_gguf_dit(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    root = tmp_path / "models"
    for sub in ("diffusion_models", "vae", "one4d"):
        (root / sub).mkdir(parents=True)
    dit = _tiny_dit()
    write_wan_gguf(root / "diffusion_models" / "wan_tiny-Q8_0.gguf", dit.state_dict())
    save_file(build_vae("tiny-vae").state_dict(), root / "vae" / "tiny_vae.safetensors")
    save_one4d(One4DModel(dit, DitVariant(CONFIG, None), DLCConfig(rank=4, link_layers=(0,))), root / "one4d" / "tiny.safetensors")
    cache.clear_cache()
    try:
        names = nodes.One4DLoadBackbone.INPUT_TYPES()["required"]["dit_name"][0]
        assert "wan_tiny-Q8_0.gguf" in names
        handle = nodes.One4DLoadBackbone().load("wan_tiny-Q8_0.gguf", "tiny_vae.safetensors", "fp32", "fp8_e4m3fn")[0]
        handle = nodes.One4DApplyPointmapLoRA().apply(handle, "tiny.safetensors")[0]
        assert handle.dit.dit.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn, "fp8 storage still applies"
        cond = nodes.One4DBuildConditioning().build(
            handle, width=64, height=64, length=17, frame_indices="first", prompt="", negative_prompt="",
            images=torch.rand(1, 64, 64, 3), positive=[[torch.randn(1, 5, 32), {}]])[0]
        rgb, xyz = nodes.One4DSample().sample(handle, cond, seed=0, steps=1, guidance=1.0, shift=3.0, scheduler="unipc")
        assert torch.isfinite(rgb["samples"]).all() and torch.isfinite(xyz["samples"]).all()
        with pytest.raises(One4DInputError, match="was not found in models/diffusion_models"):
            nodes.One4DLoadBackbone().load("other-Q4_K.gguf", "tiny_vae.safetensors")
    finally:
        cache.clear_cache()
