"""Given frames come back: latent frames whose pixel frames were all given end equal to the conditioning
latents (so they decode at the VAE's round-trip quality); others are generated; the switch turns it off."""
from __future__ import annotations

import pytest
import torch

from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.dlc import BRANCHES, DLCConfig, One4DModel
from one4d.sampling import SamplerSettings, observed_latent_frames, sample
from one4d.umc import Conditioning, build_mask


def _model() -> One4DModel:
    torch.manual_seed(0)
    model = One4DModel(build_dit("tiny-inp").eval(), DitVariant(DIT_PRESETS["tiny-inp"], "tiny-inp"), DLCConfig(rank=4))
    for _, layer in model.lora_layers():
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.05)
    return model


def _cond(indices: list[int], frames: int = 9) -> Conditioning:
    g = torch.Generator().manual_seed(1)
    t = WAN21.latent_frames(frames)
    return Conditioning(frames, 32, 32, indices, build_mask(indices, frames, (4, 4), WAN21), torch.randn(1, 16, t, 4, 4, generator=g),
                        torch.randn(1, 512, 32, generator=g), WAN21)


@pytest.mark.parametrize(("indices", "known"), [([0], [True, False, False]), (list(range(9)), [True, True, True]),
                                                 ([0, 1, 2, 3, 4], [True, True, False]), ([0, 2, 8], [True, False, False]),
                                                 ([3, 8], [False, False, False])])
def test_the_latent_frames_kept_are_the_fully_given_ones(indices, known):
    got = observed_latent_frames(_cond(indices))
    assert (got is None and not any(known)) or got.tolist() == known


@pytest.mark.parametrize("scheduler", ["euler", "unipc"])
def test_given_latent_frames_come_back_exactly_and_the_rest_is_generated(scheduler):
    model, cond = _model(), _cond([0])
    rgb, _ = sample(model, cond, SamplerSettings(steps=3, guidance=2.0, scheduler=scheduler, seed=3))
    assert torch.allclose(rgb[:, :, 0], cond.cond_latents[:, :, 0], atol=1e-6)
    assert not torch.allclose(rgb[:, :, 1:], cond.cond_latents[:, :, 1:], atol=0.1)
    off, _ = sample(model, cond, SamplerSettings(steps=3, guidance=2.0, scheduler=scheduler, seed=3, keep_observed=False))
    assert (off[:, :, 0] - cond.cond_latents[:, :, 0]).abs().max() > 0.1


def test_video_mode_returns_the_given_video_and_text_mode_is_untouched():
    model = _model()
    cond = _cond(list(range(9)))
    rgb, _ = sample(model, cond, SamplerSettings(steps=2, guidance=1.0, seed=0))
    assert torch.allclose(rgb, cond.cond_latents, atol=1e-6)
    text = _cond([])
    a = sample(model, text, SamplerSettings(steps=2, guidance=1.0, seed=0))
    b = sample(model, text, SamplerSettings(steps=2, guidance=1.0, seed=0, keep_observed=False))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_frames_come_back_as_the_pinned_latents_while_the_dit_reads_the_encoders():
    """With refined (pinned) latents, the given frame ends equal to them; the DiT's conditioning input stays
    the encoder's latents, so sampling the other frames sees what it was trained on."""
    model, cond = _model(), _cond([0])
    seen = []
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[5].clone()))
    cond.pinned_latents = cond.cond_latents + 0.3
    rgb, _ = sample(model, cond, SamplerSettings(steps=3, guidance=1.0, seed=3))
    assert torch.allclose(rgb[:, :, 0], cond.pinned_latents[:, :, 0], atol=1e-6)
    assert seen and all(torch.equal(s, cond.cond_latents) for s in seen)
