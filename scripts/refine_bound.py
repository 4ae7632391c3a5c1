#!/usr/bin/env python3
"""What a VAE's decoder can give back when its latents are refined for it: the held-out photos through the
encoder alone, and with their latents refined (``VideoCodec.refine``) at each ``steps:rate:weight`` setting.

    python scripts/refine_bound.py --vae one4d/assets/embedded/vae.safetensors --settings 25:0.1:0.01 200:0.05:0

A large gain with no penalty (weight 0) says the decoder could show more than the encoder gives it: the
encoder's amortized guess, not the decoder, is what limits the round trip. The RMS change of the latents
(normalized units) says how far from the encoder's latents each setting goes. Prints a table and, with
``--json``, JSON.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from one4d.codec import VideoCodec
from one4d.data.media import read_image
from one4d.data.photos import photo_files
from one4d.evaluation.reports import decode_photo, photo_latents, photo_round_trip
from one4d.evaluation.suite import psnr
from one4d.models import EMBEDDED_DIR, load_vae_component


def measure(codec: VideoCodec, photos: list[np.ndarray], steps: int, rate: float, weight: float) -> dict[str, float]:
    """Mean PSNR of the refined round trip, mean RMS latent change and seconds per photo for one setting."""
    gains, changes, t0 = [], [], time.time()
    for photo in photos:
        encoded, refined = photo_latents(codec, photo, steps, rate, weight)
        gains.append(psnr(decode_photo(codec, refined), photo))
        changes.append(float((refined - encoded).square().mean().sqrt()))
    return {"psnr": float(np.mean(gains)), "rms_change": float(np.mean(changes)), "s_per_photo": (time.time() - t0) / len(photos)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vae", default=str(EMBEDDED_DIR / "vae.safetensors"), help="VAE component file")
    p.add_argument("--photos", default="skimage", help="folder of photos or 'skimage' (its held-out photos are used)")
    p.add_argument("--size", type=int, default=64, help="photos are fitted to this square size")
    p.add_argument("--settings", nargs="+", default=["25:0.1:0.01"], help="steps:rate:weight, one row each")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    codec = VideoCodec(load_vae_component(args.vae))
    photos = [read_image(f, args.size, args.size) for f in photo_files(args.photos, "heldout")]
    rows = {"encoder": {"psnr": float(np.mean([psnr(photo_round_trip(codec, ph), ph) for ph in photos])), "rms_change": 0.0}}
    for setting in args.settings:
        steps, rate, weight = setting.split(":")
        rows[setting] = measure(codec, photos, int(steps), float(rate), float(weight))
    print(f"{'latents':<20}{'PSNR dB':>10}{'RMS change':>12}{'s/photo':>10}")
    for name, row in rows.items():
        print(f"{name:<20}{row['psnr']:>10.2f}{row['rms_change']:>12.3f}{row.get('s_per_photo', 0.0):>10.1f}")
    if args.json:
        print(json.dumps({"photos": len(photos), "rows": rows}))


if __name__ == "__main__":
    main()
