"""The ablation's alternatives to DLC run through the same call signature and train only their LoRA."""
from __future__ import annotations

import pytest
import torch

from one4d.training.ablation import ChannelConcatModel, WidthConcatModel
from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.training.loop import StepSettings, flow_matching_loss
from one4d.umc import build_mask


@pytest.mark.parametrize("cls", [ChannelConcatModel, WidthConcatModel])
def test_alternatives_share_one_lora_and_train(cls):
    torch.manual_seed(0)
    dit = build_dit("tiny-inp")
    model = cls(dit, DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), rank=4)
    rgb, xyz = torch.randn(2, 16, 2, 4, 4), torch.randn(2, 16, 2, 4, 4)
    mask, cond, ctx = build_mask([0], 5, (4, 4), WAN21, batch=2), torch.randn(2, 16, 2, 4, 4), torch.randn(2, 512, 32)
    v_rgb, v_xyz = model(rgb, xyz, torch.tensor([500.0, 100.0]), ctx, mask, cond)
    assert v_rgb.shape == rgb.shape and v_xyz.shape == xyz.shape
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n or n.startswith("xyz_") for n in names)
    assert not any(".rgb." in n or ".xyz." in n for n in names)  # one shared adapter
    loss, _ = flow_matching_loss(model, rgb, xyz, mask, cond, ctx, StepSettings(), torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is not None for p in model.trainable_parameters())


def test_channel_concat_starts_as_the_base_model_for_rgb():
    torch.manual_seed(0)
    dit = build_dit("tiny-inp")
    rgb, xyz = torch.randn(1, 16, 2, 4, 4), torch.randn(1, 16, 2, 4, 4)
    mask, cond, ctx = build_mask([0], 5, (4, 4), WAN21), torch.randn(1, 16, 2, 4, 4), torch.randn(1, 512, 32)
    with torch.no_grad():
        base = dit(torch.cat([rgb, mask, cond], 1), torch.tensor([300.0]), ctx, return_dict=False)[0]
        model = ChannelConcatModel(dit, DitVariant(DIT_PRESETS["tiny-inp"], None), rank=4)
        v_rgb, _ = model(rgb, xyz, torch.tensor([300.0]), ctx, mask, cond)
    torch.testing.assert_close(v_rgb, base)
