"""``one4d eval``: the embedded model on a fixed held-out synthetic suite, in four modes.

Suite: procedural scenes with seeds ``HELDOUT_START + i`` (never used in training), 17 x 64 x 64.
Modes: ``full`` (all frames observed: reconstruction), ``sparse25`` (first, last and evenly spaced frames,
a quarter of the clip), ``single`` (frame 0: image-to-4D), ``text`` (caption only). Every mode gets the
scene's caption as prompt. ``--split train`` runs the same measurements on training scenes instead: the
gap between the two tells a model that does not fit its data from one that does not generalize.

Metrics per mode, averaged over scenes: depth AbsRel and delta<1.25 of the recovered depth after one
median-scale alignment per sequence (MonST3R/Geo4D protocol, :mod:`one4d.evaluation.metrics`), camera ATE /
RPE-trans / RPE-rot (degrees) after Sim(3) alignment, RGB PSNR on the observed frames, and
``base_rgb_psnr``: the same PSNR for the base video model alone (adapters and links bypassed) with the
same seeds, the reference for "RGB preserved". Generation modes are compared in the table with two
baselines: the untrained One4D model (zero adapters and links) and a constant depth map.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import One4DInputError
from ..sampling import SamplerSettings

MODES = ("full", "sparse25", "single", "text")
METRICS = ("depth_absrel", "delta_1_25", "ate", "rpe_trans", "rpe_rot_deg", "rgb_psnr", "base_rgb_psnr")


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = float(np.mean((np.clip(pred, 0, 1) - target) ** 2))
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def mode_indices(mode: str, frames: int) -> list[int]:
    from ..umc import sparse_indices

    return {"full": list(range(frames)), "sparse25": sparse_indices(frames, 0.25), "single": [0], "text": []}[mode]


def evaluate_scene(pipe, scene, mode: str, settings: SamplerSettings, with_base: bool = True) -> dict[str, Any]:
    """All metrics of one scene in one mode."""
    from .metrics import depth_metrics, pose_metrics

    f, h, w = scene.rgb.shape[:3]
    idx = mode_indices(mode, f)
    frames = torch.from_numpy(scene.rgb[idx]) if idx else None
    cond = pipe.condition(f, h, w, frames, idx, prompt=scene.caption)
    res = pipe.generate(cond, settings)
    ok = res.valid & scene.valid & np.isfinite(res.depth) & (res.depth > 0)
    d = depth_metrics(res.depth, scene.depth, ok, alignment="median", max_depth=None)
    p = pose_metrics(res.c2w, scene.c2w)
    out = {"depth_absrel": d["abs_rel"], "delta_1_25": d["delta_1_25"], "ate": p["ate"], "rpe_trans": p["rpe_trans"],
           "rpe_rot_deg": p["rpe_rot"], "rgb_psnr": psnr(res.rgb[idx], scene.rgb[idx]) if idx else None, "base_rgb_psnr": None}
    if with_base and idx:
        from ..sampling import sample

        pipe.model.base_only = True
        try:
            rgb_lat, _ = sample(pipe.model, cond, settings)
        finally:
            pipe.model.base_only = False
        with torch.no_grad():
            base = pipe.codec.decode(rgb_lat)[0].permute(1, 2, 3, 0).numpy() * 0.5 + 0.5
        out["base_rgb_psnr"] = psnr(base[idx], scene.rgb[idx])
    return out


def constant_depth_metrics(scene) -> dict[str, float]:
    from .metrics import depth_metrics

    d = depth_metrics(np.ones_like(scene.depth), scene.depth, scene.valid, alignment="median", max_depth=None)
    return {"depth_absrel": d["abs_rel"], "delta_1_25": d["delta_1_25"]}


def _mean(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def suite_seeds(count: int, split: str = "heldout", first: int = 0) -> list[int]:
    """``count`` scene seeds from position ``first`` of the held-out seeds (the suite) or the training seeds."""
    from ..data import HELDOUT_SEEDS, TRAIN_SEEDS

    if split not in ("heldout", "train"):
        raise One4DInputError(f"split '{split}' is unknown; use 'heldout' (the suite) or 'train' (to check the fit).")
    if count < 1 or first < 0:
        raise One4DInputError(f"--scenes {count} / --first-scene {first}: give at least 1 scene and a position >= 0.")
    return list({"heldout": HELDOUT_SEEDS, "train": TRAIN_SEEDS}[split][first : first + count])


def run_suite(pipe, seeds: Sequence[int], modes: tuple[str, ...], settings: SamplerSettings, with_base: bool = True) -> dict[str, dict]:
    from ..data import render_scene

    out = {}
    for mode in modes:
        rows = [evaluate_scene(pipe, render_scene(s), mode, settings, with_base) for s in seeds]
        out[mode] = _mean(rows)
    return out


def scene_clip(scene):
    """A scene's RGB video and normalized pointmap video as a VAE batch ``[2, 3, F, H, W]`` in [-1, 1],
    with the pointmap's :class:`~one4d.pointmap.Normalization`."""
    from ..pointmap import fit_normalization, normalize

    norm = fit_normalization(scene.points, scene.valid)
    clip = torch.from_numpy(np.stack([scene.rgb * 2 - 1, normalize(scene.points, norm)])).permute(0, 4, 1, 2, 3)
    return clip.float(), norm


def codec_report(codec, seeds: Sequence[int]) -> dict[str, float]:
    """How well the VAE reconstructs the RGB clips and normalized pointmap clips of the given scenes."""
    from ..data import render_scene
    from .metrics import depth_metrics
    from ..pointmap import denormalize, normalize

    rows = []
    for s in seeds:
        sc = render_scene(s)
        clip, norm = scene_clip(sc)
        with torch.no_grad():
            rec = codec.decode(codec.encode(clip)).permute(0, 2, 3, 4, 1).numpy()
        pts = denormalize(rec[1], norm)
        cam = np.einsum("fij,fhwj->fhwi", np.linalg.inv(sc.c2w)[:, :3, :3], pts) + np.linalg.inv(sc.c2w)[:, None, None, :3, 3]
        d = depth_metrics(cam[..., 2], sc.depth, sc.valid, alignment="none", max_depth=None)
        rows.append({"rgb_psnr": psnr(rec[0] * 0.5 + 0.5, sc.rgb),
                     "pointmap_psnr": psnr(rec[1] * 0.5 + 0.5, normalize(sc.points, norm) * 0.5 + 0.5),
                     "pointmap_depth_absrel": d["abs_rel"]})
    return _mean(rows)


def coupling_report(pipe, seeds: Sequence[int], sigmas: tuple[float, ...] = (0.5, 0.9), seed: int = 0) -> dict[str, dict[str, float]]:
    """How much the XYZ branch uses the RGB video: full-video conditioning, one denoising prediction.

    For each scene, the clean pointmap latents are noised to each sigma and the model predicts them
    back (``x0 = x_t - sigma * v``) twice: with the scene's own RGB video as conditioning and with another
    scene's. The mean squared x0 error of both is reported; equal values mean the pointmap prediction
    ignores the video (DLC's links carry nothing), a large gap means it reconstructs from the video.
    """
    from ..data import render_scene
    from ..pipeline import pad_text
    from ..umc import build_mask

    scenes = len(seeds)
    if scenes < 2:
        raise One4DInputError("--coupling needs at least 2 scenes (it swaps the videos between scenes).")
    rgb, xyz, ctx = [], [], []
    with torch.no_grad():
        for s in seeds:
            sc = render_scene(s)
            lat = pipe.codec.encode(scene_clip(sc)[0])  # the full-video conditioning latents are the RGB latents
            rgb.append(lat[:1])
            xyz.append(lat[1:])
            ctx.append(pad_text(pipe.encode_text(sc.caption), pipe.text_length))
    f = sc.rgb.shape[0]
    rgb, xyz, ctx = torch.cat(rgb), torch.cat(xyz), torch.cat(ctx)
    mask = build_mask(list(range(f)), f, tuple(rgb.shape[-2:]), batch=scenes)
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for sigma in sigmas:
        eps_r, eps_x = torch.randn(rgb.shape, generator=gen), torch.randn(xyz.shape, generator=gen)
        x_t = (1 - sigma) * xyz + sigma * eps_x
        t = torch.full((scenes,), sigma * 1000.0)
        row = {}
        for name, video in (("own", rgb), ("swapped", rgb.roll(1, 0))):
            with torch.no_grad():
                _, v = pipe.model((1 - sigma) * video + sigma * eps_r, x_t, t, ctx, mask, video)
            row[name] = float((x_t - sigma * v - xyz).square().mean())
        out[f"sigma_{sigma:g}"] = row
    return out


def untrained_pipeline(model: str = "embedded"):
    """The model's base DiT with freshly initialized (zero) One4D adapters and links."""
    from ..training import recipe as emb
    from ..codec import VideoCodec
    from ..dlc import DLCConfig, One4DModel
    from ..pipeline import One4DPipeline

    folder = emb.model_dir(model)
    dit, variant = emb.load_embedded_dit(folder / "dit.safetensors")
    one4d = One4DModel(dit, variant, DLCConfig(rank=emb.RANK)).eval()
    return One4DPipeline(one4d, VideoCodec(emb.load_embedded_vae(folder / "vae.safetensors")),
                         emb.HashTextEncoder(variant.config["text_dim"]))


def evaluate(args: argparse.Namespace) -> int:
    from ..data import render_scene
    from ..pipeline import One4DPipeline

    modes = tuple(args.modes.split(",")) if args.modes else MODES
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise One4DInputError(f"unknown mode {bad[0]!r}; choose from {', '.join(MODES)}.")
    torch.set_num_threads(args.threads)
    settings = SamplerSettings(steps=args.steps, guidance=args.guidance, shift=args.shift, seed=args.seed)
    pipe = One4DPipeline.embedded(args.model)
    seeds = suite_seeds(args.scenes, args.split, args.first_scene)
    results = run_suite(pipe, seeds, modes, settings)
    table: dict[str, dict] = {f"one4d/{m}": v for m, v in results.items()}
    if args.baselines:
        untrained = run_suite(untrained_pipeline(args.model), seeds, modes, settings, with_base=False)
        table.update({f"untrained/{m}": v for m, v in untrained.items()})
        const = _mean([constant_depth_metrics(render_scene(s)) for s in seeds])
        table["constant-depth"] = {k: const.get(k) for k in METRICS}
    stream = sys.stderr if args.json else sys.stdout
    print(f"{'model/mode':<18}" + "".join(f"{m:>14}" for m in METRICS), file=stream)
    for name, row in table.items():
        cells = "".join(f"{'-' if row.get(m) is None else format(row[m], '.4f'):>14}" for m in METRICS)
        print(f"{name:<18}{cells}", file=stream)
    doc: dict[str, Any] = dict(results)
    if args.baselines:
        doc["baselines"] = {k: v for k, v in table.items() if not k.startswith("one4d/")}
    if args.vae:
        doc["vae"] = codec_report(pipe.codec, seeds)
        print("vae (held-out reconstruction): " + ", ".join(f"{k} {v:.4f}" for k, v in doc["vae"].items()), file=stream)
    if args.coupling:
        doc["coupling"] = coupling_report(pipe, seeds)
        print("coupling (xyz x0 MSE, own video vs another scene's): " + ", ".join(
            f"{k} {v['own']:.4f} vs {v['swapped']:.4f}" for k, v in doc["coupling"].items()), file=stream)
    if args.json:
        print(json.dumps(doc))
    return 0


def add_parser(p: argparse.ArgumentParser) -> None:
    from ..training import recipe as emb

    p.description = __doc__.splitlines()[0]
    p.add_argument("--json", action="store_true", help="one JSON object {mode: {metric: value}} on stdout")
    p.add_argument("--scenes", type=int, default=8, help="scenes per mode")
    p.add_argument("--split", choices=("heldout", "train"), default="heldout",
                   help="held-out scenes (the suite) or training scenes (to check how well the model fits its data)")
    p.add_argument("--first-scene", type=int, default=0,
                   help="start at this position of the split's seeds (e.g. 100: held-out scenes kept for validation)")
    p.add_argument("--modes", default="", help=f"comma-separated subset of {', '.join(MODES)}")
    p.add_argument("--baselines", action="store_true", help="also evaluate the untrained model and constant depth")
    p.add_argument("--vae", action="store_true", help="also report the VAE's RGB and pointmap reconstruction")
    p.add_argument("--coupling", action="store_true",
                   help="also report how much the pointmap prediction depends on the RGB video (see coupling_report)")
    p.add_argument("--model", default="embedded",
                   help="'embedded' (the shipped model) or a folder with vae/dit/one4d.safetensors, e.g. a `one4d train` --work folder")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=emb.GUIDANCE, help="classifier-free guidance (1: none)")
    p.add_argument("--shift", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(handler=evaluate)
