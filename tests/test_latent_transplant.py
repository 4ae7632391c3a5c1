"""Carrying a DiT into another VAE's latent space: the fold is exact for an invertible map, the fitted maps are
the least-squares ones, and ``one4d train base --base-init/--base-init-vae`` starts from the carried weights."""
from __future__ import annotations

import numpy as np
import torch

from one4d.backbone import LatentGeometry, build_dit, build_vae, read_safetensors
from one4d.cli import main
from one4d.codec import VideoCodec
from one4d.models import load_vae_component
from one4d.training import recipe
from one4d.training.latent_transplant import fitting_clips, latent_maps, transplant_dit


def test_an_invertible_map_carries_the_dit_exactly():
    torch.manual_seed(0)
    geometry = LatentGeometry(channels=16, time_stride=4, space_stride=4, patch=2)
    dit = build_dit(recipe.dit_config_for(geometry)).eval()
    with torch.no_grad():  # the DiT's output layer starts at zero; give it weights so the output map shows
        dit.proj_out.weight.normal_(0, 0.05)
        dit.proj_out.bias.normal_(0, 0.05)
    q = torch.eye(16) + 0.3 * torch.randn(16, 16)  # old latents = q @ new latents
    moved = build_dit(recipe.dit_config_for(geometry)).eval()
    moved.load_state_dict(transplant_dit(dit.state_dict(), geometry, q, torch.linalg.inv(q)))
    z_old, cond_old, mask = torch.randn(1, 16, 2, 4, 4), torch.randn(1, 16, 2, 4, 4), torch.rand(1, 4, 2, 4, 4)
    to_new = lambda z: torch.einsum("ij,bj...->bi...", torch.linalg.inv(q), z)
    ctx = torch.randn(1, 8, recipe.TEXT_DIM)
    t = torch.tensor([500.0])
    with torch.no_grad():
        v_old = dit(torch.cat([z_old, mask, cond_old], 1), t, ctx, return_dict=False)[0]
        v_new = moved(torch.cat([to_new(z_old), mask, to_new(cond_old)], 1), t, ctx, return_dict=False)[0]
    assert v_old.abs().mean() > 0.01
    torch.testing.assert_close(v_new, to_new(v_old), atol=2e-4, rtol=1e-3)


def test_latent_maps_find_a_permutation_with_sign_flips_of_the_channels():
    torch.manual_seed(0)
    cfg = {"base_dim": 8, "z_dim": 16, "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16}
    old = build_vae(cfg).eval()
    new = build_vae(cfg).eval()
    new.load_state_dict(old.state_dict())
    perm, sign = torch.randperm(16), torch.where(torch.rand(16) < 0.5, -1.0, 1.0)
    with torch.no_grad():  # the encoder's last layer gives [mean | logvar]: new mean channel i = sign_i * old channel perm_i
        new.quant_conv.weight[:16] = old.quant_conv.weight[perm] * sign.view(-1, 1, 1, 1, 1)
        new.quant_conv.bias[:16] = old.quant_conv.bias[perm] * sign
    clips = np.random.default_rng(0).integers(0, 256, (4, 5, 32, 32, 3), dtype=np.uint8)
    old_from_new, new_from_old, r2 = latent_maps(VideoCodec(old), VideoCodec(new), clips)
    expected = torch.eye(16)[perm] * sign.view(-1, 1)  # new = expected @ old
    torch.testing.assert_close(new_from_old, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(old_from_new, expected.T, atol=1e-4, rtol=0)
    assert r2 > 0.9999


def test_base_init_starts_from_the_carried_dit(tmp_path, capsys):
    work, old = tmp_path / "w", tmp_path / "old"
    fast = ["--clips", "2", "--vae-steps", "1", "--vae-window", "1", "--vae-crop", "16", "--vae-batch", "1"]
    assert main(["train", "data", "--work", str(old), *fast]) == 0
    assert main(["train", "vae", "--work", str(old), *fast, "--vae-arch", "plain"]) == 0  # another latent space
    work.mkdir()
    (work / "data.npz").symlink_to(old / "data.npz")
    assert main(["train", "vae", "--work", str(work), *fast, "--vae-arch", "plain", "--seed", "5", "--vae-lr", "1e-2"]) == 0
    assert main(["train", "encode", "--work", str(work)]) == 0
    assert main(["train", "base", "--work", str(work), "--base-steps", "1", "--batch", "1"]) == 0
    start = tmp_path / "start.safetensors"
    start.write_bytes((work / "dit.safetensors").read_bytes())
    (work / "dit.safetensors").unlink()
    assert main(["train", "base", "--work", str(tmp_path / "w"), "--base-steps", "1", "--batch", "1", "--base-lr", "0",
                 "--base-init", str(start), "--base-init-vae", str(old / "vae.safetensors")]) == 0
    assert "carried into this VAE's latents" in capsys.readouterr().out
    from one4d.training.data import load_training_set

    data = load_training_set(work)
    maps = latent_maps(VideoCodec(load_vae_component(old / "vae.safetensors")), VideoCodec(load_vae_component(work / "vae.safetensors")),
                       fitting_clips(data))
    geometry = LatentGeometry(16, 4, 4, 2)
    expected = transplant_dit(read_safetensors(start), geometry, maps[0], maps[1])
    got = read_safetensors(work / "dit.safetensors")  # lr 0: the run kept the weights it started from
    assert not torch.allclose(expected["patch_embedding.weight"], read_safetensors(start)["patch_embedding.weight"])
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], atol=1e-6, rtol=0)
    # a DiT of another recipe is refused with the fix
    other = tmp_path / "other.safetensors"
    from one4d.models import read_component_config, save_component

    cfg = dict(read_component_config(start), num_layers=1)
    save_component(build_dit(cfg).state_dict(), cfg, other)
    capsys.readouterr()
    assert main(["train", "base", "--work", str(work), "--base-init", str(other)]) == 2
    assert "--base-init other.safetensors: its DiT differs" in capsys.readouterr().err
    assert main(["train", "base", "--work", str(work), "--base-init-vae", str(old / "vae.safetensors")]) == 2
    assert "give the DiT with --base-init too" in capsys.readouterr().err
