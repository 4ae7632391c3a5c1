#!/usr/bin/env python3
"""How well a linear codec (PCA on non-overlapping blocks) reconstructs the training clips, for VAE strides
and latent channel counts: a reference that a trained VAE of the same strides and channels should beat.

    python scripts/linear_codec_bound.py runs/v2 --space 4 --time 4,2,1 --channels 16,32,48

Blocks are ``time x space x space`` pixels x 3 colours, taken from frames 1-16 of each clip (a Wan VAE codes
frame 0 alone and each later group of ``--time`` frames together); the basis is fitted on the first 75% of
the clips of ``<work>/data.npz`` and measured on the rest. Prints a table and, with ``--json``, JSON.
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


def linear_psnr(train: np.ndarray, test: np.ndarray, channels: int, fit_rows: int = 200_000) -> float:
    """PSNR of ``test`` rows projected on the top ``channels`` principal components of ``train`` rows."""
    mean = train.mean(0)
    step = max(1, len(train) // fit_rows)
    basis = np.linalg.svd(train[::step] - mean, full_matrices=False)[2][:channels]
    rec = (test - mean) @ basis.T @ basis + mean
    return float(10 * np.log10(1 / np.mean((rec - test) ** 2)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("work", type=Path, help="a `one4d train` work folder with data.npz")
    p.add_argument("--space", type=int, default=4, help="spatial stride")
    p.add_argument("--time", default="4,2,1", help="temporal strides, comma-separated")
    p.add_argument("--channels", default="16,32,48", help="latent channels, comma-separated")
    p.add_argument("--clips", type=int, default=200, help="clips read from data.npz")
    p.add_argument("--json", action="store_true", help="print JSON after the table")
    args = p.parse_args()
    rgb = np.asarray(np.load(args.work / "data.npz", mmap_mode="r")["rgb"][: args.clips], dtype=np.float32)[:, 1:] / 255
    cut = int(len(rgb) * 0.75)
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
