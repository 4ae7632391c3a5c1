"""The held-out evaluation suite: a model on procedural scenes it never saw, in four modes.

Suite: procedural scenes with seeds ``HELDOUT_START + i`` (never used in training), 17 x 64 x 64.
Modes: ``full`` (all frames observed: reconstruction), ``sparse25`` (first, last and evenly spaced frames,
a quarter of the clip), ``single`` (frame 0: image-to-4D), ``text`` (caption only). Every mode gets the
scene's caption as prompt. ``--split train`` runs the same measurements on training scenes instead: the
gap between the two tells a model that does not fit its data from one that does not generalize.

Metrics per mode, averaged over scenes (with their standard errors, :func:`stderr_rows`): depth AbsRel and
delta<1.25 of the recovered depth after one median-scale alignment per sequence (MonST3R/Geo4D protocol,
:mod:`one4d.evaluation.metrics`; None for a scene where the model predicts no valid depth at all, and the
camera figures None where no camera could be recovered), the same on frame 0 alone (``*_frame0``: the frame image-to-4D observes;
the motion of the other frames is not given by one image), camera ATE /
RPE-trans / RPE-rot (degrees) after Sim(3) alignment, RGB PSNR on the observed frames, and
``base_rgb_psnr``: the same PSNR for the base video model alone (adapters and links bypassed) with the
same seeds, the reference for "RGB preserved". Generation modes are compared in the table with two
baselines: the untrained One4D model (zero adapters and links) and a constant depth map.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ..codec import VideoCodec
from ..data import HELDOUT_SEEDS, TRAIN_SEEDS, render_scene
from ..data.clip_sampling import TrainingClip
from ..dlc import One4DModel
from ..errors import One4DInputError
from ..models import ModelFolder
from ..pipeline import One4DPipeline
from ..sampling import SamplerSettings, sample
from ..umc import sparse_indices
from ..weights import dlc_config_from_metadata, read_metadata
from .metrics import depth_metrics, pose_metrics

MODES = ("full", "sparse25", "single", "text")
METRICS = ("depth_absrel", "delta_1_25", "depth_absrel_frame0", "delta_1_25_frame0", "ate", "rpe_trans", "rpe_rot_deg",
           "rgb_psnr", "base_rgb_psnr")


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    """PSNR in dB of images in [0, 1]."""
    mse = float(np.mean((np.clip(pred, 0, 1) - target) ** 2))
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))


def mode_indices(mode: str, frames: int) -> list[int]:
    return {"full": list(range(frames)), "sparse25": sparse_indices(frames, 0.25), "single": [0], "text": []}[mode]


def evaluate_scene(pipe, scene, mode: str, settings: SamplerSettings, with_base: bool = True) -> dict[str, Any]:
    """All metrics of one scene in one mode; depth also on frame 0 alone (the observed frame of image-to-4D)."""
    f, h, w = scene.rgb.shape[:3]
    idx = mode_indices(mode, f)
    frames = torch.from_numpy(scene.rgb[idx]) if idx else None
    cond = pipe.condition(f, h, w, frames, idx, prompt=scene.caption)
    res = pipe.generate(cond, settings)
    ok = res.valid & scene.valid & np.isfinite(res.depth) & (res.depth > 0)
    none = {"abs_rel": None, "delta_1_25": None}  # a model that predicts no valid depth (e.g. early in training)
    d = depth_metrics(res.depth, scene.depth, ok, alignment="median", max_depth=None) if ok.any() else none
    d0 = depth_metrics(res.depth[:1], scene.depth[:1], ok[:1], alignment="median", max_depth=None) if ok[:1].any() else none
    p = pose_metrics(res.c2w, scene.c2w) if np.isfinite(res.c2w).all() else {"ate": None, "rpe_trans": None, "rpe_rot": None}
    out = {"depth_absrel": d["abs_rel"], "delta_1_25": d["delta_1_25"], "depth_absrel_frame0": d0["abs_rel"],
           "delta_1_25_frame0": d0["delta_1_25"], "ate": p["ate"], "rpe_trans": p["rpe_trans"],
           "rpe_rot_deg": p["rpe_rot"], "rgb_psnr": psnr(res.rgb[idx], scene.rgb[idx]) if idx else None, "base_rgb_psnr": None}
    if with_base and idx:
        pipe.model.base_only = True
        try:
            rgb_lat, _ = sample(pipe.model, cond, settings)
        finally:
            pipe.model.base_only = False
        base = pipe.codec.decode_video(rgb_lat) * 0.5 + 0.5
        out["base_rgb_psnr"] = psnr(base[idx], scene.rgb[idx])
    return out


def constant_depth_metrics(scene) -> dict[str, float]:
    """The depth figures of a constant depth map (the floor a model must beat)."""
    d = depth_metrics(np.ones_like(scene.depth), scene.depth, scene.valid, alignment="median", max_depth=None)
    d0 = depth_metrics(np.ones_like(scene.depth[:1]), scene.depth[:1], scene.valid[:1], alignment="median", max_depth=None)
    return {"depth_absrel": d["abs_rel"], "delta_1_25": d["delta_1_25"], "depth_absrel_frame0": d0["abs_rel"],
            "delta_1_25_frame0": d0["delta_1_25"]}


def mean_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the mean over rows of the values that are not None (None when all are)."""
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows if r[k] is not None]
        out[k] = float(np.mean(vals)) if vals else None
    return out


def _number(value: Any) -> bool:
    """A figure (not None, text or a flag) that means and differences can be taken of."""
    return isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)


def _stderr(values: list) -> float | None:
    """Standard error of the mean of ``values`` (None with fewer than two)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None


def stderr_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the standard error of the mean over rows (None with fewer than two values)."""
    out = {}
    for k in rows[0]:
        out[k] = _stderr([r[k] for r in rows if _number(r[k])])
    return out


def paired_differences(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> dict[str, tuple[float, float | None]]:
    """Per key, the mean of B - A over scenes both were measured on, with its standard error.

    Two models on the same scenes differ less from scene to scene than the scenes differ from each other, so
    the paired difference tells them apart where the two means, each with its own standard error, cannot.
    """
    if len(rows_a) != len(rows_b):
        raise One4DInputError(f"the two evaluations cover {len(rows_a)} and {len(rows_b)} scenes; compare runs of the same "
                              "suite (same --scenes, --first-scene and --split).")
    out: dict[str, tuple[float, float | None]] = {}
    for k in rows_a[0]:
        diffs = [float(b[k]) - float(a[k]) for a, b in zip(rows_a, rows_b) if _number(a.get(k)) and _number(b.get(k))]
        if diffs:
            out[k] = (float(np.mean(diffs)), _stderr(diffs))
    return out


def suite_seeds(count: int, split: str = "heldout", first: int = 0) -> list[int]:
    """``count`` scene seeds from position ``first`` of the held-out seeds (the suite) or the training seeds."""
    if split not in ("heldout", "train"):
        raise One4DInputError(f"split '{split}' is unknown; use 'heldout' (the suite) or 'train' (to check the fit).")
    if count < 1 or first < 0:
        raise One4DInputError(f"--scenes {count} / --first-scene {first}: give at least 1 scene and a position >= 0.")
    return list({"heldout": HELDOUT_SEEDS, "train": TRAIN_SEEDS}[split][first : first + count])


@dataclass
class EvalClip:
    """Ground truth in the form :func:`evaluate_scene` reads, for clips that are not procedural scenes."""

    rgb: np.ndarray  # [F, H, W, 3] float32 in [0, 1]
    depth: np.ndarray  # [F, H, W] float32 z-depth
    valid: np.ndarray  # [F, H, W] bool
    c2w: np.ndarray  # [F, 4, 4] camera-to-world
    caption: str


def dataset_clip(clip: TrainingClip) -> EvalClip:
    """A real dataset's clip (:mod:`one4d.data.clip_sampling`) as an evaluation scene."""
    return EvalClip(clip.rgb.astype(np.float32) / 255.0, clip.depth, clip.valid & (clip.depth > 0), clip.c2w, clip.caption)


def scene_rows(pipe, scenes: Sequence, modes: tuple[str, ...], settings: SamplerSettings,
               with_base: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every scene's figures in every mode: ``{mode: [row per scene]}`` (procedural scenes or :class:`EvalClip`)."""
    return {mode: [evaluate_scene(pipe, scene, mode, settings, with_base) for scene in scenes] for mode in modes}


def suite_rows(pipe, seeds: Sequence[int], modes: tuple[str, ...], settings: SamplerSettings,
               with_base: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every scene's figures in every mode: ``{mode: [row per seed]}``."""
    return scene_rows(pipe, [render_scene(s) for s in seeds], modes, settings, with_base)


def run_suite(pipe, seeds: Sequence[int], modes: tuple[str, ...], settings: SamplerSettings, with_base: bool = True) -> dict[str, dict]:
    """``{mode: mean figures}`` over the scenes of ``seeds``."""
    return {mode: mean_rows(rows) for mode, rows in suite_rows(pipe, seeds, modes, settings, with_base).items()}


def untrained_pipeline(model: str = "embedded") -> One4DPipeline:
    """A model folder's base DiT with freshly initialized (zero) One4D adapters and links of the same layout."""
    folder = ModelFolder.open(model)
    dit, variant = folder.load_dit()
    config = dlc_config_from_metadata(read_metadata(folder.file("one4d")), folder.file("one4d").name)
    one4d = One4DModel(dit, variant, config).eval()
    return One4DPipeline(one4d, VideoCodec(folder.load_vae()), folder.text_encoder(variant), defaults=folder.defaults)
