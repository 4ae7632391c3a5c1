"""Widening a trained VAE's latent (``--vae-z-dim``): the widened VAE reconstructs exactly as before, its new
channels start unused and then train, and a narrowing request is refused with the fix."""
from __future__ import annotations

import json

import pytest
import torch

from one4d.backbone import build_vae, read_safetensors
from one4d.cli import main
from one4d.errors import One4DInputError
from one4d.training.vae_growth import NEW_LOGVAR, widen_latent
from one4d.weights import read_metadata

CONFIG = {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2, 4], "temperal_downsample": [True, True],
          "scale_factor_spatial": 4, "scale_factor_temporal": 4, "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4}


def _trained_like() -> torch.nn.Module:
    """A VAE whose every weight (biases and norms too) is nonzero, so no layer is skipped by chance."""
    torch.manual_seed(0)
    vae = build_vae(CONFIG).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return vae


def test_the_widened_vae_reconstructs_exactly_as_before():
    vae = _trained_like()
    state, cfg = widen_latent(vae.state_dict(), CONFIG, 10)
    assert cfg["z_dim"] == 10 and cfg["base_dim"] == 8 and cfg["latents_mean"] == [0.0] * 10 and cfg["latents_std"] == [1.0] * 10
    wide = build_vae(cfg).eval()
    wide.load_state_dict(state)
    x = torch.rand(1, 3, 9, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        post, post_w = vae.encode(x).latent_dist, wide.encode(x).latent_dist
        assert torch.allclose(post_w.mean[:, :4], post.mean, atol=1e-5)
        assert torch.allclose(post_w.logvar[:, :4], post.logvar, atol=1e-5)
        assert torch.allclose(post_w.logvar[:, 4:], torch.full_like(post_w.logvar[:, 4:], NEW_LOGVAR))
        assert post_w.mean[:, 4:].abs().mean() > 1e-3  # the new channels carry something the decoder can learn to read
        z = post_w.mean + torch.randn_like(post_w.mean)  # whatever the new channels hold, the decoder ignores them so far
        assert torch.allclose(wide.decode(z).sample, vae.decode(z[:, :4]).sample, atol=1e-5)


def test_narrowing_is_refused_with_the_fix():
    with pytest.raises(One4DInputError, match="--vae-z-dim 4 must be more than.*4 latent channels"):
        widen_latent(_trained_like().state_dict(), CONFIG, 4)


def test_the_cli_widens_and_trains_the_new_channels(tmp_path, capsys):
    work = tmp_path / "w"
    assert main(["train", "data", "--work", str(work), "--clips", "2"]) == 0
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "1", "--vae-crop", "16", "--vae-window", "5"]) == 0
    (work / "start.safetensors").write_bytes((work / "vae.safetensors").read_bytes())
    assert main(["train", "vae", "--work", str(work), "--vae-steps", "2", "--vae-crop", "16", "--vae-window", "5",
                 "--vae-z-dim", "20", "--vae-init", str(work / "start.safetensors"), "--vae-validate-scenes", "1"]) == 0
    cfg = json.loads(read_metadata(work / "vae.safetensors")["config"])
    assert cfg["z_dim"] == 20 and len(cfg["latents_mean"]) == len(cfg["latents_std"]) == 20
    w = read_safetensors(work / "vae.safetensors")["decoder.conv_in.weight"]
    assert w.shape[1] == 20 and w[:, 16:].abs().max() > 0  # the decoder began to read the new channels
    assert main(["train", "vae", "--work", str(tmp_path / "x"), "--vae-z-dim", "32"]) == 2  # nothing to widen
    assert "--vae-z-dim widens the latent of a trained VAE" in capsys.readouterr().err
