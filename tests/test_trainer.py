"""The shared trainer: a run stopped by its time limit resumes exactly (same batches, noise and updates),
its checkpoint exists only while a stage is unfinished, and another run's checkpoint is refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from one4d.backbone import read_safetensors
from one4d.cli import main
from one4d.errors import One4DInputError
from one4d.training.trainer import Schedule, Trainer


def _toy_run(tmp_path, steps: int, time_limit: float = 0.0, lr: float = 1e-2) -> tuple[bool, torch.Tensor]:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(4))
    rng, gen = np.random.default_rng(1), torch.Generator().manual_seed(2)
    module = torch.nn.ParameterList([w])
    trainer = Trainer(module, Schedule(steps, lr, tmp_path / "toy.state.pt", time_limit=time_limit, warmup=2),
                      {"data": rng, "noise": gen}, tmp_path, "toy")

    def step(_model):
        target = torch.from_numpy(rng.normal(size=4)).float() + torch.randn(4, generator=gen) + torch.randn(4)
        loss = (w - target).square().mean()
        return loss, {"loss": loss.item()}

    return trainer.run(step), w.detach().clone()


def test_time_limited_runs_resume_to_the_same_weights(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    done, straight = _toy_run(tmp_path / "a", 6)
    assert done and not (tmp_path / "a" / "toy.state.pt").exists()  # a finished stage leaves no checkpoint
    runs = []
    while not runs or not runs[-1][0]:
        runs.append(_toy_run(tmp_path / "b", 6, time_limit=1e-9))  # every run stops after one step
        assert len(runs) <= 6
    assert len(runs) == 6 and not (tmp_path / "b" / "toy.state.pt").exists()
    assert torch.equal(runs[-1][1], straight)
    assert not torch.equal(runs[0][1], straight)


def test_a_checkpoint_of_another_run_is_refused(tmp_path):
    assert _toy_run(tmp_path, 6, time_limit=1e-9)[0] is False
    with pytest.raises(One4DInputError, match="belongs to another run.*lr 0.01 there, 0.02 here.*delete the file"):
        _toy_run(tmp_path, 6, lr=2e-2)


def test_the_base_stage_resumes_exactly_through_the_cli(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for work in (a, b):
        assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
        assert main(["train", "vae", "--work", str(work), "--vae-steps", "1"]) == 0
        assert main(["train", "encode", "--work", str(work)]) == 0
    base = ["train", "base", "--base-steps", "3", "--batch", "2"]
    assert main([*base, "--work", str(a)]) == 0
    for _ in range(3):  # stopped by the time limit after every step
        assert main([*base, "--work", str(b), "--time-limit", "1e-9"]) == 0
    assert not (b / "base.state.pt").exists()
    wa, wb = read_safetensors(a / "dit.safetensors"), read_safetensors(b / "dit.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("clip", [1.0, None])
def test_a_non_finite_gradient_stops_the_run_before_the_weights_change(tmp_path, clip):
    """Step 3's gradient is NaN: the run stops with the fix named, the weights are those of step 2, and the
    checkpoint written at step 2 is kept as it was (with gradient clipping and without)."""
    w = torch.nn.Parameter(torch.zeros(4))
    trainer = Trainer(torch.nn.ParameterList([w]), Schedule(5, 1e-2, tmp_path / "toy.state.pt", clip_norm=clip,
                                                            checkpoint_every=2), {"noise": torch.Generator()}, tmp_path, "toy")
    seen = []

    def step(_model):
        seen.append(w.detach().clone())
        loss = (w - 1).square().mean() * (float("nan") if len(seen) == 3 else 1.0)
        return loss, {"loss": loss.item()}

    checkpoint = tmp_path / "toy.state.pt"
    with pytest.raises(One4DInputError, match=r"toy: step 3 gave non-finite gradients.*--precision fp32"):
        trainer.run(step)
    assert torch.equal(w.detach(), seen[2]) and not torch.equal(seen[2], seen[1]) and torch.isfinite(w).all()
    assert torch.load(checkpoint, weights_only=False)["step"] == 2


@pytest.mark.parametrize(("bf16", "expected"), [(None, False), (True, True), (False, False)])
def test_steps_run_under_bf16_autocast_when_asked(tmp_path, bf16, expected):
    """On a CPU, bf16 autocast only when the schedule asks (None: only on CUDA); the parameters stay fp32."""
    w = torch.nn.Parameter(torch.ones(4, 4))
    trainer = Trainer(torch.nn.ParameterList([w]), Schedule(2, 1e-2, tmp_path / "toy.state.pt", bf16=bf16),
                      {"noise": torch.Generator()}, tmp_path, "toy")
    seen = []

    def step(_model):
        y = torch.ones(2, 4) @ w
        seen.append((torch.is_autocast_enabled("cpu"), y.dtype))
        loss = y.float().square().mean()
        return loss, {"loss": loss.item()}

    assert trainer.run(step)
    assert seen == [(expected, torch.bfloat16 if expected else torch.float32)] * 2
    assert w.dtype == torch.float32 and w.grad is None


def test_the_precision_option_reaches_the_schedule(tmp_path):
    from one4d.cli import build_parser
    from one4d.training.stages import schedule

    for flag, want in (("auto", None), ("bf16", True), ("fp32", False)):
        args = build_parser().parse_args(["train", "vae", "--work", str(tmp_path), "--precision", flag])
        args.work = tmp_path
        assert schedule(args, "vae", 1, 1e-3).bf16 is want


def test_every_stage_trains_under_bf16_autocast_on_the_cpu(tmp_path):
    """--precision bf16 through the CLI: the VAE (on whole 64 x 64 frames, where torch's CPU bf16 kernel for
    pointwise Conv3d gradients crashes unguarded: one4d.precision), base and one4d stages (float16 latent cache
    included) each run a step and write their weights."""
    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "1", "--precision", "bf16", "--vae-crop", "0"]) == 0
    assert main(["train", "encode", "--work", str(work)]) == 0
    assert main(["train", "base", "--work", str(work), "--base-steps", "1", "--batch", "2", "--precision", "bf16"]) == 0
    assert main(["train", "one4d", "--work", str(work), "--one4d-steps", "1", "--batch", "2", "--precision", "bf16",
                 "--validate-scenes", "0"]) == 0
    for name in ("vae", "dit", "one4d"):
        assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in read_safetensors(work / f"{name}.safetensors").values())
