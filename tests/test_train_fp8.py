"""Training on a base stored in fp8 (`--base-storage fp8`): the base's weights are float8 e4m3fn, the adapters
and links train in fp32, the gradients equal those of a base rounded to fp8 once and kept in fp32, and with
`--grad-checkpointing` the up-cast weights are not kept for the backward pass (without it they are, which the
option's help says). Also: adapters train in fp32 on a bf16 base."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

pytest.importorskip("transformers", reason="training on Wan files needs transformers: pip install 'comfyui-one4d[train]'")
from wan_folder import write_wan_model_folder

from one4d.cli import main
from one4d.models import ModelFolder
from one4d.precision import FP8_DTYPES
from one4d.training.stages import one4d_training_model
from one4d.weights import read_metadata


def _args(storage: str, checkpointing: bool) -> argparse.Namespace:
    return argparse.Namespace(base_storage=storage, links=2, rank=4, alpha=None, model="wan", one4d_init="", grad_checkpointing=checkpointing)


def _build(folder: ModelFolder, storage: str, checkpointing: bool = False):
    torch.manual_seed(0)
    model = one4d_training_model(_args(storage, checkpointing), folder, torch.device("cpu"))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():  # nonzero adapters and links, the same in every model, so every path carries gradient
        for p in model.trainable_parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return model.train()


def _inputs():
    gen = torch.Generator().manual_seed(6)
    rgb, xyz = torch.randn(2, 16, 2, 8, 8, generator=gen), torch.randn(2, 16, 2, 8, 8, generator=gen)
    mask, cond = torch.ones(2, 4, 2, 8, 8), torch.randn(2, 16, 2, 8, 8, generator=gen)
    return rgb, xyz, torch.tensor([300.0, 700.0]), torch.randn(2, 6, 32, generator=gen), mask, cond


def _step(model) -> tuple[list[torch.Tensor], int]:
    """Gradients of the trainable parameters, and the bytes saved for the backward pass that are not the
    model's own parameters (activations and temporary copies)."""
    own = {p.data_ptr() for p in model.parameters()}
    extra = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        extra.append((t.untyped_storage().data_ptr(), t.untyped_storage().nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        v_rgb, v_xyz = model(*_inputs())
        loss = v_rgb.square().mean() + v_xyz.square().mean()
    loss.backward()
    saved = sum(n for ptr, n in dict(extra).items() if ptr not in own)
    return [p.grad.clone() for p in model.trainable_parameters()], saved


def _cast_bytes(model) -> int:
    """fp32 bytes of the block weights that fp8 storage up-casts."""
    return sum(p.numel() * 4 for p in model.dit.blocks.parameters() if p.dtype in FP8_DTYPES)


def test_fp8_base_trains_like_a_base_rounded_to_fp8(tmp_path):
    folder = ModelFolder.open(write_wan_model_folder(tmp_path, one4d=False), require=("vae", "dit"))
    fp8 = _build(folder, "fp8")
    blocks = [p for n, p in fp8.dit.blocks.named_parameters() if "lora" not in n]
    assert any(p.dtype == torch.float8_e4m3fn for p in blocks)
    assert all(p.dtype == torch.float32 for p in fp8.trainable_parameters())
    fp32_bytes = sum(p.numel() * 4 for p in blocks)  # (norms and biases stay in the compute dtype)
    assert sum(p.numel() * p.element_size() for p in blocks) < 0.3 * fp32_bytes
    reference = _build(folder, "compute")
    with torch.no_grad():
        for (name, p), (_, q) in zip(fp8.dit.named_parameters(), reference.dit.named_parameters()):
            if p.dtype in FP8_DTYPES:
                q.copy_(p.float())  # the reference holds the same fp8 values, in fp32
    got, saved_fp8 = _step(fp8)
    want, saved_ref = _step(reference)
    for g, w in zip(got, want):
        assert torch.allclose(g, w, rtol=1e-4, atol=1e-6)
    cast = _cast_bytes(fp8)
    # without checkpointing the up-cast copies wait for the backward: those of every layer whose input needs a
    # gradient (not the text's cross-attention keys and values, nor the first block's q, k, v): 67% here
    assert saved_fp8 - saved_ref >= 0.5 * cast


def test_fp8_base_with_checkpointing_keeps_no_upcast_weights(tmp_path):
    folder = ModelFolder.open(write_wan_model_folder(tmp_path, one4d=False), require=("vae", "dit"))
    fp8, reference = _build(folder, "fp8", checkpointing=True), _build(folder, "compute", checkpointing=True)
    _, saved_fp8 = _step(fp8)
    _, saved_ref = _step(reference)
    assert saved_fp8 - saved_ref <= 0.1 * _cast_bytes(fp8)


def test_adapters_train_in_fp32_on_a_bf16_base(tmp_path):
    path = write_wan_model_folder(tmp_path, one4d=False)
    layout = json.loads((path / "model.json").read_text())
    (path / "model.json").write_text(json.dumps(dict(layout, dtype="bf16")))
    model = _build(ModelFolder.open(path, require=("vae", "dit")), "compute")
    assert next(model.dit.blocks.parameters()).dtype == torch.bfloat16
    assert {p.dtype for p in model.trainable_parameters()} == {torch.float32}


def test_one4d_stage_trains_on_an_fp8_base(tmp_path):
    model = write_wan_model_folder(tmp_path, one4d=False)
    work = str(tmp_path / "w")
    assert main(["train", "data", "--work", work, "--clips", "2"]) == 0
    assert main(["train", "encode", "--work", work, "--model", str(model)]) == 0
    assert main(["train", "one4d", "--work", work, "--model", str(model), "--base-storage", "fp8", "--grad-checkpointing",
                 "--batch", "2", "--one4d-steps", "2", "--rank", "4", "--links", "2", "--validate-scenes", "0"]) == 0
    assert read_metadata(f"{work}/one4d.safetensors")["trained_steps"] == "2"
