"""Gradient checkpointing of the One4D model: each block runs again in the backward pass, in the forward
mode it first ran in, and the gradients of adapters and links equal those without checkpointing."""
from __future__ import annotations

import torch

from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.dlc import BRANCHES, DLCConfig, One4DModel
from one4d.training.loop import StepSettings, flow_matching_loss
from one4d.umc import build_mask


def _grads(checkpointing: bool) -> tuple[list[torch.Tensor], int]:
    torch.manual_seed(0)
    model = One4DModel(build_dit("tiny-inp"), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4, link_layers=(0, 1)))
    for _, layer in model.lora_layers():
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.05)
    for p in model.links.parameters():
        torch.nn.init.normal_(p, std=0.05)
    if checkpointing:
        model.enable_gradient_checkpointing()
    calls = []
    model.dit.blocks[0].register_forward_pre_hook(lambda *_: calls.append(1))
    model.train()
    g = torch.Generator().manual_seed(1)
    rgb0, xyz0, cond = (torch.randn(2, 16, 2, 4, 4, generator=g) for _ in range(3))
    mask, ctx = build_mask([0], 5, (4, 4), WAN21, batch=2), torch.randn(2, 512, 32, generator=g)
    loss, _ = flow_matching_loss(model, rgb0, xyz0, mask, cond, ctx, StepSettings(text_dropout=0), torch.Generator().manual_seed(2))
    loss.backward()
    return [p.grad for p in model.trainable_parameters()], len(calls)


def test_checkpointed_blocks_run_twice_and_give_the_same_gradients():
    plain, once = _grads(False)
    checked, twice = _grads(True)
    assert (once, twice) == (1, 2)
    assert all(g is not None for g in checked) and all(float(g.abs().max()) > 0 for g in checked)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(plain, checked))
