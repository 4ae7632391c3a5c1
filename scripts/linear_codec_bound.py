#!/usr/bin/env python3
"""How well a linear codec (PCA on non-overlapping blocks) reconstructs the training clips, for VAE strides
and latent channel counts: a reference that a trained VAE of the same strides and channels should beat.

    python scripts/linear_codec_bound.py runs/v2 --space 4 --time 4,2,1 --channels 16,32,48

Blocks are ``time x space x space`` pixels x 3 colours, taken from frames 1-16 of each clip (a Wan VAE codes
frame 0 alone and each later group of ``--time`` frames together); the basis is fitted on the first 75% of
the clips of ``<work>/data.npz`` and measured on the rest. Prints a table and, with ``--json``, JSON.

``--vae FILE`` asks the other question, of a trained VAE: how much of the picture its latents hold, read by
the simplest decoder there is. A ridge regression from each latent token and its 8 neighbours to the token's
pixel block, fitted and measured on the same split, is printed beside the VAE's own decoder, for frame 0 (coded
alone) and the later frames. A linear read-out that beats the decoder says the decoder, not the encoder, is
what to train (``one4d train vae --vae-train decoder`` keeps the latent space and every model on it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def blocks(clips: np.ndarray, time: int, space: int) -> np.ndarray:
    """(N, F, H, W, C) clips -> one row per ``time x space x space x C`` block."""
    n, f, h, w, c = clips.shape
    f = f // time * time
    x = clips[:, :f].reshape(n, f // time, time, h // space, space, w // space, space, c)
    return x.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, time * space * space * c)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR of values in [0, 1]."""
    return float(10 * np.log10(1 / np.mean((pred - target) ** 2)))


def linear_psnr(train: np.ndarray, test: np.ndarray, channels: int, fit_rows: int = 200_000) -> float:
    """PSNR of ``test`` rows projected on the top ``channels`` principal components of ``train`` rows."""
    mean = train.mean(0)
    step = max(1, len(train) // fit_rows)
    basis = np.linalg.svd(train[::step] - mean, full_matrices=False)[2][:channels]
    rec = (test - mean) @ basis.T @ basis + mean
    return psnr(rec, test)


def neighbourhood(latents: np.ndarray) -> np.ndarray:
    """(N, C, T, h, w) latents -> one row per token in (N, T, h, w) order: its C channels, then its 8
    neighbours' (edges repeated), 9 C values."""
    n, c, t, h, w = latents.shape
    padded = np.pad(latents, ((0, 0), (0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    shifts = [(1, 1)] + [(dy, dx) for dy in range(3) for dx in range(3) if (dy, dx) != (1, 1)]
    rows = np.concatenate([padded[..., dy:dy + h, dx:dx + w] for dy, dx in shifts], axis=1)
    return rows.transpose(0, 2, 3, 4, 1).reshape(n * t * h * w, 9 * c)


def ridge_psnr(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, ridge: float = 1e-3) -> float:
    """PSNR of ``test_y`` (values in [0, 1]) predicted from ``test_x`` by an affine ridge fit on the train rows."""
    a = np.c_[train_x, np.ones(len(train_x))]
    weights = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ train_y)
    pred = np.c_[test_x, np.ones(len(test_x))] @ weights
    return psnr(pred, test_y)


def vae_probe(vae_file: Path, rgb: np.ndarray, cut: int, batch: int = 4) -> list[dict]:
    """The VAE's decoder against a linear read-out of its latents (strides from the VAE's config), on frame 0
    and on the later frames of clips (N, F, H, W, 3) in [0, 1]; fitted on clips ``[:cut]``, measured on the
    rest. Latents are the pack's own codec's (posterior mean, as every model on the VAE sees them)."""
    import torch

    from one4d.codec import VideoCodec
    from one4d.models import load_vae_component

    codec = VideoCodec(load_vae_component(vae_file).float().eval())
    g = codec.geometry
    latents, decoded = [], []
    with torch.no_grad():
        for i in range(0, len(rgb), batch):
            z = codec.encode(torch.from_numpy(rgb[i:i + batch]).permute(0, 4, 1, 2, 3) * 2 - 1)
            latents.append(z.numpy())
            decoded.append((codec.decode(z).permute(0, 2, 3, 4, 1).numpy() + 1) / 2)
    latents, decoded = np.concatenate(latents), np.concatenate(decoded)
    rows = []
    # latent frame 0 codes pixel frame 0 alone; latent frame k >= 1 codes the next time_stride pixel frames
    for name, part, group in (("frame 0", slice(0, 1), 1), ("later frames", slice(1, None), g.time_stride)):
        x, clips, rec = neighbourhood(latents[:, :, part]), rgb[:, part], decoded[:, part]
        y = blocks(clips, group, g.space_stride)
        split = cut * (len(x) // len(rgb))
        rows.append({"frames": name, "decoder_psnr": round(psnr(rec[cut:], clips[cut:]), 2),
                     "linear_readout_psnr": round(ridge_psnr(x[:split], y[:split], x[split:], y[split:]), 2)})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path, help="a `one4d train` work folder with data.npz")
    p.add_argument("--space", type=int, default=4, help="spatial stride")
    p.add_argument("--time", default="4,2,1", help="temporal strides, comma-separated")
    p.add_argument("--channels", default="16,32,48", help="latent channels, comma-separated")
    p.add_argument("--clips", type=int, default=200, help="clips read from data.npz")
    p.add_argument("--json", action="store_true", help="print JSON after the table")
    p.add_argument("--vae", type=Path, help="a VAE safetensors file: its decoder against a linear read-out of its latents")
    args = p.parse_args()
    rgb = np.asarray(np.load(args.work / "data.npz", mmap_mode="r")["rgb"][: args.clips], dtype=np.float32) / 255
    cut = int(len(rgb) * 0.75)
    if args.vae:
        rows = vae_probe(args.vae, rgb, cut)
        print(f"{'frames':>12} {'decoder dB':>10} {'linear read-out dB':>18}")
        for r in rows:
            print(f"{r['frames']:>12} {r['decoder_psnr']:>10.2f} {r['linear_readout_psnr']:>18.2f}")
        if args.json:
            print(json.dumps(rows))
        return
    rgb = rgb[:, 1:]
    rows = []
    for t in (int(v) for v in args.time.split(",")):
        train, test = blocks(rgb[:cut], t, args.space), blocks(rgb[cut:], t, args.space)
        for ch in (int(v) for v in args.channels.split(",")):
            rows.append({"space": args.space, "time": t, "channels": ch,
                         "compression": train.shape[1] / ch, "psnr": round(linear_psnr(train, test, ch), 2)})
    print(f"{'stride (s x s x t)':>18} {'channels':>8} {'compression':>11} {'PSNR dB':>8}")
    for r in rows:
        print(f"{r['space']} x {r['space']} x {r['time']:<9} {r['channels']:>8} {r['compression']:>10.1f}x {r['psnr']:>8.2f}")
    if args.json:
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
