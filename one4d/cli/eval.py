"""``one4d eval``: a model on the fixed held-out synthetic suite (:mod:`one4d.evaluation.suite`), in four modes,
32 scenes by default, each figure with its standard error, a VAE-only row, a row on held-out natural photos,
optional baselines and coupling report; a table, and JSON with ``--json``; ``--compare A.json B.json`` sets two
such JSON outputs side by side with the paired difference of every figure."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

from ..codec import VideoCodec
from ..data import render_scene
from ..data.photos import photo_files
from ..defaults import EMBEDDED
from ..errors import One4DInputError
from ..evaluation.long_clips import run_long_suite
from ..evaluation.reports import codec_report, coupling_report, photo_report, photo_vae_report
from ..evaluation.suite import (
    METRICS,
    MODES,
    constant_depth_metrics,
    mean_rows,
    paired_differences,
    stderr_rows,
    suite_rows,
    suite_seeds,
    untrained_pipeline,
)
from ..models import load_vae_component
from ..pipeline import One4DPipeline
from .options import add_sampling_options, request_defaults, sampling_settings


def evaluate(args: argparse.Namespace) -> int:
    if args.compare:
        return _compare(args, *args.compare)
    modes = tuple(args.modes.split(",")) if args.modes else MODES
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise One4DInputError(f"unknown mode {bad[0]!r}; choose from {', '.join(MODES)}.")
    torch.set_num_threads(args.threads)
    seeds = suite_seeds(args.scenes, args.split, args.first_scene)
    if args.vae_only:
        return _evaluate_vae(args, seeds)
    pipe = One4DPipeline.from_folder(args.model)
    pipe.defaults = request_defaults(args, pipe.defaults)
    settings = sampling_settings(args, pipe.defaults)
    if args.frames:
        return _evaluate_long(args, pipe, settings, seeds)
    rows = suite_rows(pipe, seeds, modes, settings)
    results = {m: mean_rows(r) for m, r in rows.items()}
    errors = {m: stderr_rows(r) for m, r in rows.items()}
    table: dict[str, tuple[dict, dict | None]] = {f"one4d/{m}": (results[m], errors[m]) for m in modes}
    if args.baselines:
        untrained = suite_rows(untrained_pipeline(args.model), seeds, modes, settings, with_base=False)
        table.update({f"untrained/{m}": (mean_rows(r), stderr_rows(r)) for m, r in untrained.items()})
        const = [constant_depth_metrics(render_scene(s)) for s in seeds]
        table["constant-depth"] = (mean_rows(const), stderr_rows(const))
    stream = sys.stderr if args.json else sys.stdout
    print(f"{len(seeds)} {args.split} scenes; mean +- standard error", file=stream)
    print(f"{'model/mode':<18}" + "".join(f"{m:>22}" for m in METRICS), file=stream)
    for name, (mean, err) in table.items():
        print(f"{name:<18}" + "".join(f"{_cell(mean.get(m), None if err is None else err.get(m)):>22}" for m in METRICS), file=stream)
    doc: dict[str, Any] = {**results, "stderr": errors, "scenes": len(seeds), "seeds": list(seeds), "per_scene": rows}
    if args.baselines:
        doc["baselines"] = {k: mean for k, (mean, _) in table.items() if not k.startswith("one4d/")}
    if args.vae:
        doc["vae"] = codec_report(pipe.codec, seeds)
        print("vae only (round trip of the scenes' RGB and pointmap clips): "
              + ", ".join(f"{k} {v:.4f}" for k, v in doc["vae"].items()), file=stream)
    files = _held_out_photos(args, stream)
    if files:
        doc["photos"] = photo_report(pipe, files, settings)
        print(f"photos ({len(files)} held out; PSNR against the photo fitted to the model size): "
              + ", ".join(f"{k} {v:.2f}" for k, v in doc["photos"].items()), file=stream)
    if args.coupling:
        doc["coupling"] = coupling_report(pipe, seeds)
        print("coupling (xyz x0 MSE, own video / another scene's / links off): " + ", ".join(
            f"{k} {v['own']:.4f} / {v['swapped']:.4f} / {v['unlinked']:.4f}" for k, v in doc["coupling"].items()), file=stream)
    if args.json:
        print(json.dumps(doc))
    return 0


def _held_out_photos(args: argparse.Namespace, stream) -> list:
    """The held-out photos of ``--photos`` (none when it is empty; skipped, saying why, when unavailable)."""
    if not args.photos:
        return []
    try:
        return photo_files(args.photos, "heldout")
    except One4DInputError as exc:
        print(f"photo row skipped: {exc}", file=stream)
        return []


def _evaluate_vae(args: argparse.Namespace, seeds: list[int]) -> int:
    """``--vae-only FILE``: a VAE component alone, before any DiT is trained on it: the round trips of the
    suite's RGB and pointmap clips and of the held-out photos at the embedded size (no sampling)."""
    path = Path(args.vae_only)
    if not path.is_file():
        raise One4DInputError(f"--vae-only {path}: no such file; give a VAE component file, e.g. <work>/vae.safetensors "
                              "written by `one4d train vae`.")
    codec = VideoCodec(load_vae_component(path))
    doc: dict[str, Any] = {"vae": codec_report(codec, seeds), "scenes": len(seeds)}
    stream = sys.stderr if args.json else sys.stdout
    print(f"vae only, {len(seeds)} {args.split} scenes (round trip of RGB and pointmap clips): "
          + ", ".join(f"{k} {v:.4f}" for k, v in doc["vae"].items()), file=stream)
    files = _held_out_photos(args, stream)
    if files:
        doc["photos"] = photo_vae_report(codec, files, EMBEDDED.height, EMBEDDED.width,
                                           request_defaults(args, EMBEDDED).refine_steps)
        print(f"photos ({len(files)} held out, {EMBEDDED.width}x{EMBEDDED.height}): "
              + ", ".join(f"{k} {v:.2f}" for k, v in doc["photos"].items()), file=stream)
    if args.json:
        print(json.dumps(doc))
    return 0


def _read_eval(path: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise One4DInputError(f"--compare {path}: cannot read it as JSON ({exc}); give files written by `one4d eval --json > FILE`.") from None
    if "per_scene" not in doc:
        raise One4DInputError(f"--compare {path}: it has no per-scene figures; write it again with this version's "
                              "`one4d eval --json > FILE`.")
    return doc


def _compare(args: argparse.Namespace, path_a: str, path_b: str) -> int:
    """``--compare A B``: per mode and figure, A's and B's means and B - A over the same scenes, with its
    standard error (:func:`one4d.evaluation.suite.paired_differences`)."""
    a, b = _read_eval(path_a), _read_eval(path_b)
    if a.get("seeds") != b.get("seeds"):
        raise One4DInputError(f"--compare: {path_a} and {path_b} were measured on different scenes; evaluate both with the "
                              "same --scenes, --first-scene and --split.")
    doc: dict[str, Any] = {}
    stream = sys.stderr if args.json else sys.stdout
    print(f"{len(a['seeds'])} scenes; A = {path_a}, B = {path_b}; B - A is paired over the same scenes", file=stream)
    print(f"{'mode':<10}{'figure':<22}{'A':>10}{'B':>10}{'B - A':>22}", file=stream)
    for mode in [m for m in a["per_scene"] if m in b["per_scene"]]:
        diffs = paired_differences(a["per_scene"][mode], b["per_scene"][mode])
        doc[mode] = {k: {"a": a[mode][k], "b": b[mode][k], "diff": d, "stderr": e} for k, (d, e) in diffs.items()}
        for k, (d, e) in diffs.items():
            print(f"{mode:<10}{k:<22}{a[mode][k]:>10.4f}{b[mode][k]:>10.4f}{_cell(d, e):>22}", file=stream)
    if args.json:
        print(json.dumps(doc))
    return 0


def _cell(mean: float | None, err: float | None) -> str:
    if mean is None:
        return "-"
    return f"{mean:.4f} +- {err:.4f}" if err is not None else f"{mean:.4f}"


def _evaluate_long(args: argparse.Namespace, pipe: One4DPipeline, settings, seeds: list[int]) -> int:
    """``--frames N``: full-video reconstruction of N-frame clips window by window (:mod:`one4d.evaluation.long_clips`)."""
    doc = {"long_full": run_long_suite(pipe, seeds, args.frames, settings, overlap=args.overlap)}
    stream = sys.stderr if args.json else sys.stdout
    print(f"long clips ({args.frames} frames, full video, {len(seeds)} scenes):", file=stream)
    for key, value in doc["long_full"].items():
        print(f"  {key:<24}{value:.4f}" if isinstance(value, float) else f"  {key:<24}{value}", file=stream)
    if args.json:
        print(json.dumps(doc))
    return 0


def add_parser(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("--json", action="store_true", help="one JSON object {mode: {metric: value}} on stdout")
    p.add_argument("--scenes", type=int, default=32, help="scenes per mode")
    p.add_argument("--split", choices=("heldout", "train"), default="heldout",
                   help="held-out scenes (the suite) or training scenes (to check how well the model fits its data)")
    p.add_argument("--first-scene", type=int, default=0,
                   help="start at this position of the split's seeds (e.g. 100: held-out scenes kept for validation)")
    p.add_argument("--modes", default="", help=f"comma-separated subset of {', '.join(MODES)}")
    p.add_argument("--baselines", action="store_true", help="also evaluate the untrained model and constant depth")
    p.add_argument("--vae", action=argparse.BooleanOptionalAction, default=True,
                   help="report the VAE alone: RGB and pointmap round trips of the same scenes (--no-vae skips it)")
    p.add_argument("--photos", default="skimage",
                   help="held-out photos for the photo row (VAE round trip and frame 0 of image-to-4D): a folder, "
                        "'skimage' (scikit-image's samples; the default), or '' to skip")
    p.add_argument("--vae-only", default="", metavar="VAE_FILE",
                   help="evaluate this VAE component file alone (e.g. <work>/vae.safetensors of `one4d train vae`, before "
                        "a DiT is trained on it): round trips of the suite's scenes and of the held-out photos, no sampling")
    p.add_argument("--coupling", action="store_true",
                   help="also report how much the pointmap prediction depends on the RGB video (see coupling_report)")
    p.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"), default=None,
                   help="compare two saved `one4d eval --json` outputs of the same scenes: B - A per figure, paired over "
                        "the scenes, with its standard error (nothing is evaluated)")
    p.add_argument("--model", default="embedded",
                   help="'embedded' (the shipped model) or a folder with vae/dit/one4d.safetensors, e.g. a `one4d train` --work folder")
    p.add_argument("--frames", type=int, default=0,
                   help="evaluate long clips instead: full-video reconstruction of N-frame scenes window by window (e.g. 65)")
    p.add_argument("--overlap", type=int, default=None, help="with --frames: frames shared by consecutive windows (default: the model's)")
    add_sampling_options(p)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(handler=evaluate)
