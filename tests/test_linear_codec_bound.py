"""scripts/linear_codec_bound.py: blocks keep every pixel once, and the linear codec's PSNR rises with its
channels until it is exact."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("linear_codec_bound", Path(__file__).parents[1] / "scripts" / "linear_codec_bound.py")
bound = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bound)


def test_blocks_hold_every_pixel_once_in_block_order():
    clips = np.arange(2 * 4 * 8 * 8 * 3, dtype=np.float32).reshape(2, 4, 8, 8, 3)
    rows = bound.blocks(clips, time=2, space=4)
    assert rows.shape == (2 * 2 * 2 * 2, 2 * 4 * 4 * 3)
    assert sorted(rows.ravel().tolist()) == clips.ravel().tolist()
    assert np.array_equal(rows[0].reshape(2, 4, 4, 3), clips[0, :2, :4, :4])


def test_psnr_rises_with_channels_and_is_exact_with_all():
    rng = np.random.default_rng(0)
    clips = rng.random((30, 4, 8, 8, 3), dtype=np.float32)
    train, test = bound.blocks(clips[:20], 2, 4), bound.blocks(clips[20:], 2, 4)  # 160 rows: full rank
    psnr = [bound.linear_psnr(train, test, c) for c in (4, 16, 48)]
    assert psnr[0] < psnr[1] < psnr[2] < 40
    assert bound.linear_psnr(train, test, 96) > 80


def test_neighbourhood_rows_hold_each_token_then_its_neighbours():
    latents = np.random.default_rng(1).random((2, 3, 2, 4, 5), dtype=np.float32)
    rows = bound.neighbourhood(latents)
    assert rows.shape == (2 * 2 * 4 * 5, 9 * 3)
    n, t, y, x = 1, 1, 2, 3
    row = rows[((n * 2 + t) * 4 + y) * 5 + x]
    assert np.array_equal(row[:3], latents[n, :, t, y, x])  # the token itself first
    block = latents[n, :, t, y - 1:y + 2, x - 1:x + 2]  # an inner token: all 8 neighbours exist
    assert sorted(row.tolist()) == sorted(block.ravel().tolist())
    corner = rows[0]  # edges repeat the border token
    assert np.array_equal(corner[3:6], latents[0, :, 0, 0, 0])


def test_ridge_recovers_an_affine_map_and_not_a_random_one():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(400, 6))
    w = rng.normal(size=(6, 4)) * 0.05
    y = x @ w + 0.5
    assert bound.ridge_psnr(x[:300], y[:300], x[300:], y[300:]) > 50
    noise = rng.random((400, 4))
    assert bound.ridge_psnr(x[:300], noise[:300], x[300:], noise[300:]) < 12


def test_vae_probe_reports_the_decoders_own_round_trip(tmp_path):
    import torch

    from one4d.backbone import build_vae, vae_geometry
    from one4d.codec import VideoCodec
    from one4d.models import save_component

    cfg = {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "temperal_downsample": [True],
           "latents_mean": [0.0] * 4, "latents_std": [1.0] * 4}
    torch.manual_seed(0)
    vae = build_vae(cfg)
    save_component(vae.state_dict(), cfg, tmp_path / "vae.safetensors")
    g = vae_geometry(cfg)
    clips = np.random.default_rng(3).random((8, 1 + 2 * g.time_stride, 8, 8, 3), dtype=np.float32)
    rows = bound.vae_probe(tmp_path / "vae.safetensors", clips, cut=6)
    assert [r["frames"] for r in rows] == ["frame 0", "later frames"]
    with torch.no_grad():
        video = torch.from_numpy(clips[6:]).permute(0, 4, 1, 2, 3) * 2 - 1
        codec = VideoCodec(vae.eval())
        rec = (codec.decode(codec.encode(video)).permute(0, 2, 3, 4, 1).numpy() + 1) / 2
    expected = 10 * np.log10(1 / np.mean((rec[:, :1] - clips[6:, :1]) ** 2))
    assert abs(rows[0]["decoder_psnr"] - expected) < 0.02
    assert all(np.isfinite(r["linear_readout_psnr"]) for r in rows)
