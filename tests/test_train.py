"""Training step: task mix, rectified-flow targets, and that a few steps fit a fixed batch."""
from __future__ import annotations

import numpy as np
import torch

from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.training.loop import StepSettings, flow_matching_loss, shifted_sigmas
from one4d.training.tasks import default_task_mix, sample_observed
from one4d.umc import build_mask


def test_task_mix_follows_the_paper_plus_text_share():
    mix = default_task_mix(0.1)
    assert abs(sum(mix.values()) - 1) < 1e-9
    assert abs(mix["image"] / mix["sparse"] - 0.35 / 0.30) < 1e-9 and mix["text"] == 0.1
    rng = np.random.default_rng(0)
    draws = [sample_observed(rng, 17, mix) for _ in range(4000)]
    freq = {k: sum(t == k for t, _ in draws) / len(draws) for k in mix}
    for k in mix:
        assert abs(freq[k] - mix[k]) < 0.03, (k, freq[k])
    for task, idx in draws:
        if task == "sparse":
            assert idx[0] == 0 and idx[-1] == 16 and 2 <= len(idx) <= 9
        if task == "image":
            assert idx == [0]


def test_shifted_sigmas_are_monotone_in_unit_interval():
    u = torch.linspace(0, 1, 11)
    s = shifted_sigmas(u, 3.0)
    assert s[0] == 0 and s[-1] == 1 and torch.all(s[1:] >= s[:-1]) and s[5] > 0.5


def test_a_few_steps_fit_a_fixed_batch():
    torch.manual_seed(0)
    model = One4DModel(build_dit("tiny-inp"), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    rgb0, xyz0 = torch.randn(2, 16, 2, 4, 4), torch.randn(2, 16, 2, 4, 4)
    mask = build_mask([0], 5, (4, 4), WAN21, batch=2)
    cond, ctx = torch.randn(2, 16, 2, 4, 4), torch.randn(2, 512, 32)
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=3e-3)
    settings = StepSettings(text_dropout=0.0)
    losses = []
    for step in range(40):
        gen = torch.Generator().manual_seed(step % 2)  # two fixed noise draws
        loss, parts = flow_matching_loss(model, rgb0, xyz0, mask, cond, ctx, settings, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(parts["loss"])
        assert set(parts) == {"loss", "rgb", "xyz"}
    assert np.mean(losses[-4:]) < 0.8 * np.mean(losses[:4])
    assert all(not p.requires_grad for n, p in model.dit.named_parameters() if "lora_" not in n)
