"""Training step: task mix, rectified-flow targets, and that a few steps fit a fixed batch."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.cli import main
from one4d.errors import One4DInputError
from one4d.training.data import LatentBatches
from one4d.training.loop import StepSettings, flow_matching_loss, shifted_sigmas
from one4d.training.tasks import default_task_mix, parse_task_mix, sample_observed
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


def test_task_mix_option_is_parsed_normalized_and_checked():
    assert parse_task_mix("image=0.35, sparse=0.3,video=0.35,text=0.1") == pytest.approx(
        {"image": 0.35 / 1.1, "sparse": 0.3 / 1.1, "video": 0.35 / 1.1, "text": 0.1 / 1.1})
    assert parse_task_mix("video=2,text=0") == {"video": 1.0}  # a zero share drops the task
    for bad in ("movie=1", "video", "video=-1", "video=x", "video=1,video=2", "video=0", "video=nan"):
        with pytest.raises(One4DInputError, match="--task-mix.*image=0.35,sparse=0.3,video=0.35,text=0.1"):
            parse_task_mix(bad)


def test_the_xyz_weight_scales_the_pointmap_loss():
    torch.manual_seed(0)
    model = One4DModel(build_dit("tiny-inp"), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    rgb0, xyz0 = torch.randn(2, 16, 2, 4, 4), torch.randn(2, 16, 2, 4, 4)
    mask, cond, ctx = build_mask([0], 5, (4, 4), WAN21, batch=2), torch.randn(2, 16, 2, 4, 4), torch.randn(2, 512, 32)
    parts = {w: flow_matching_loss(model, rgb0, xyz0, mask, cond, ctx, StepSettings(xyz_weight=w), torch.Generator().manual_seed(1))[1]
             for w in (1.0, 2.5)}
    assert parts[1.0]["xyz"] == parts[2.5]["xyz"] > 0  # same draw of sigma and noise
    assert parts[2.5]["loss"] == pytest.approx(parts[2.5]["rgb"] + 2.5 * parts[2.5]["xyz"], rel=1e-6)
    assert parts[2.5]["loss"] > parts[1.0]["loss"]
    assert StepSettings(xyz_weight=2.5).changed() == {"xyz_weight": 2.5} and StepSettings().changed() == {}


@pytest.fixture(scope="module")
def tiny_work(tmp_path_factory):
    work = tmp_path_factory.mktemp("recipe") / "w"
    for argv in (["data", "--clips", "2"], ["vae", "--vae-steps", "1"], ["encode"], ["base", "--base-steps", "1", "--batch", "2"]):
        assert main(["train", argv[0], "--work", str(work), *argv[1:]]) == 0
    return work


def test_the_task_mix_decides_what_batches_observe(tiny_work):
    full = LatentBatches(tiny_work, seed=0, mix={"video": 1.0}).draw(4)[2]
    none = LatentBatches(tiny_work, seed=0, mix={"text": 1.0}).draw(4)[2]
    assert torch.all(full == 1) and torch.all(none == 0)


def test_recipe_options_reach_the_run_and_its_checkpoint(tiny_work, capsys):
    """A run stopped with changed loss settings and task mix resumes only with them; bad values are refused."""
    one4d = ["train", "one4d", "--work", str(tiny_work), "--one4d-steps", "2", "--batch", "2", "--validate-scenes", "0"]
    recipe = ["--xyz-weight", "2", "--sigma-shift", "1", "--text-dropout", "0", "--task-mix", "video=1"]
    assert main([*one4d, *recipe, "--time-limit", "1e-9"]) == 0
    assert (tiny_work / "one4d.state.pt").exists()
    capsys.readouterr()
    assert main(one4d) == 2
    err = capsys.readouterr().err
    for said in ("xyz_weight 2.0 there, None here", "shift 1.0 there", "text_dropout 0.0 there", "task_mix {'video': 1.0} there"):
        assert said in err
    assert main([*one4d, *recipe]) == 0 and not (tiny_work / "one4d.state.pt").exists()
    for bad, named in ((["--xyz-weight", "-1"], "--xyz-weight -1.0"), (["--sigma-shift", "0"], "--sigma-shift 0.0"),
                       (["--text-dropout", "1"], "--text-dropout 1.0"), (["--task-mix", "movie=1"], "--task-mix")):
        assert main([*one4d, *bad]) == 2
        assert named in capsys.readouterr().err
