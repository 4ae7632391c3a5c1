"""Flow-matching sampler: determinism, schedulers, guidance layout, callbacks, interruption, dtypes."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.dlc import BRANCHES, DLCConfig, One4DModel
from one4d.errors import One4DInputError
from one4d.sampling import One4DInterrupted, SamplerSettings, sample
from one4d.umc import Conditioning, build_mask


def _model(dtype=torch.float32) -> One4DModel:
    dit = build_dit("tiny-inp", dtype=dtype).eval()
    model = One4DModel(dit, DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    for _, layer in model.lora_layers():
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.05)
    return model.to(dtype)


def _cond(indices=(0,)) -> Conditioning:
    g = torch.Generator().manual_seed(1)
    return Conditioning(
        num_frames=5, height=32, width=32, indices=list(indices),
        mask=build_mask(list(indices), 5, (4, 4), WAN21), cond_latents=torch.randn(1, 16, 2, 4, 4, generator=g),
        context=torch.randn(1, 512, 32, generator=g), geometry=WAN21, negative_context=torch.randn(1, 512, 32, generator=g),
    )


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_seeded_determinism(scheduler):
    model, cond = _model(), _cond()
    s = SamplerSettings(steps=4, guidance=3.0, scheduler=scheduler, seed=7)
    a = sample(model, cond, s)
    b = sample(model, cond, s)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    c = sample(model, cond, SamplerSettings(steps=4, guidance=3.0, scheduler=scheduler, seed=8))
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (1, 16, 2, 4, 4) and a[1].shape == (1, 16, 2, 4, 4)


def test_guidance_keeps_conditioning_frames_in_both_passes():
    model, cond = _model(), _cond((0, 4))
    seen = []
    handle = model.dit.register_forward_pre_hook(lambda m, a, k: seen.append(k["hidden_states"].clone()), with_kwargs=True)
    try:
        sample(model, cond, SamplerSettings(steps=2, guidance=5.0, seed=0))
    finally:
        handle.remove()
    x = seen[0]  # [rgb_cond, rgb_uncond, xyz_cond, xyz_uncond]
    assert x.shape[0] == 4
    assert torch.equal(x[0, 16:], x[1, 16:]) and x[0, 16:20].sum() > 0  # mask + cond latents in both passes
    assert torch.equal(x[0, :16], x[1, :16]) and torch.equal(x[2, :16], x[3, :16])  # same noisy latents
    assert x[2:, 16:].abs().max() == 0  # XYZ branch: zeros in the 20 conditioning channels


def _batch_sizes(model, cond, settings):
    """The result of ``sample`` and the batch size of every DiT call it made."""
    sizes = []
    handle = model.dit.register_forward_pre_hook(lambda m, a, k: sizes.append(k["hidden_states"].shape[0]), with_kwargs=True)
    try:
        out = sample(model, cond, settings)
    finally:
        handle.remove()
    return out, sizes


def test_guidance_one_is_a_single_conditional_pass():
    model, cond = _model(), _cond()
    a, sizes = _batch_sizes(model, cond, SamplerSettings(steps=3, guidance=1.0, seed=0))
    assert sizes == [2, 2, 2]  # one call a step, [rgb, xyz] with the positive prompt only
    _, sizes = _batch_sizes(model, cond, SamplerSettings(steps=3, guidance=6.0, seed=0))
    assert sizes == [4, 4, 4]  # cond and uncond ride in one batch
    # without guidance the negative prompt is never read; with guidance it changes the result
    other = replace(cond, negative_context=torch.randn(1, 512, 32, generator=torch.Generator().manual_seed(9)))
    b = sample(model, other, SamplerSettings(steps=3, guidance=1.0, seed=0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    g, h = (sample(model, c, SamplerSettings(steps=3, guidance=6.0, seed=0)) for c in (cond, other))
    assert not torch.allclose(g[0], h[0]) and not torch.allclose(g[1], h[1])
    assert not torch.allclose(a[0], g[0]) and not torch.allclose(a[1], g[1])


def test_guidance_extrapolates_from_unconditional_towards_conditional():
    """One Euler step is affine in the velocity, so the result is affine in the guidance scale g:
    ``x(g) = x_uncond + g * (x_cond - x_uncond)``. Its value at g=1 must be the single conditional pass
    (a formula with cond and uncond swapped would land on the unconditional result instead), and at g=0
    the unconditional one: the positive prompt swapped for the negative, single pass."""
    model, cond = _model(), _cond()
    run = lambda c, g: sample(model, c, SamplerSettings(steps=1, guidance=g, scheduler="euler", seed=4))
    x2, x3, x4 = run(cond, 2.0), run(cond, 3.0), run(cond, 4.0)
    x1 = run(cond, 1.0)
    swapped = replace(cond, context=cond.negative_context)
    x0 = run(swapped, 1.0)
    for k in range(2):  # rgb, xyz
        torch.testing.assert_close(x3[k], (x2[k] + x4[k]) / 2, atol=1e-5, rtol=1e-4)
        step = x3[k] - x2[k]
        assert step.abs().max() > 1e-3  # the scale matters
        torch.testing.assert_close(x1[k], x2[k] - step, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(x0[k], x2[k] - 2 * step, atol=1e-5, rtol=1e-4)


def test_callback_and_interrupt_between_steps():
    model, cond = _model(), _cond()
    calls = []
    sample(model, cond, SamplerSettings(steps=5, guidance=2.0), callback=lambda i, n, x0: calls.append((i, n, tuple(x0.shape))))
    assert calls == [(i, 5, (1, 16, 2, 4, 4)) for i in range(1, 6)]
    done = []
    with pytest.raises(One4DInterrupted, match="after 2 of 5"):
        sample(model, cond, SamplerSettings(steps=5), callback=lambda i, n, x0: done.append(i), should_stop=lambda: len(done) >= 2)
    assert done == [1, 2]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_sampling_runs_and_stays_close(dtype):
    cond = _cond()
    torch.manual_seed(0)
    ref = _model()
    half = _model(dtype)
    half.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in ref.state_dict().items()})
    s = SamplerSettings(steps=3, guidance=2.0, seed=3)
    a, b = sample(ref, cond, s), sample(half, cond, s)
    assert torch.isfinite(b[0]).all()
    assert (a[0] - b[0]).norm() / a[0].norm() < 0.05


def test_bad_settings():
    with pytest.raises(One4DInputError, match="scheduler 'ddim'"):
        sample(_model(), _cond(), SamplerSettings(steps=2, scheduler="ddim"))
    with pytest.raises(One4DInputError, match="steps"):
        sample(_model(), _cond(), SamplerSettings(steps=0))
