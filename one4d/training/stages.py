"""The embedded model's training recipe, stage by stage (the paper's section 6 in miniature).

Stages (each reads the previous stage's output from the work folder):
  data   render procedural 4D clips (training seeds only)
  vae    train the small Wan VAE on RGB clips (short windows first: cheaper; then full clips, which
         teach the causal feature cache across chunks), then record latent statistics
  encode encode every clip once: RGB, normalized pointmap, and UMC conditioning videos
  base   train the Wan-Fun-InP-style base DiT on RGB with random UMC masks: the "foundation model"
  one4d  freeze the base and train the rgb/xyz LoRAs and control links on RGB + pointmaps with the task mix;
         the work folder is then a complete model folder (:mod:`one4d.models`)
``ablation`` (on demand) trains DLC, channel concatenation and width-wise concatenation with one shared
LoRA on the same data and budget and evaluates them (``ablation.json``). Losses go to ``<work>/log.jsonl``.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..backbone import LatentGeometry, build_dit, build_vae, read_safetensors, vae_geometry
from .. import precision
from ..codec import VideoCodec
from ..data import render_scene
from ..data.clip_sampling import ClipSpec
from ..data.photos import PhotoClips, photo_files
from ..defaults import EMBEDDED
from ..dlc import DLCConfig, One4DModel, default_link_layers
from ..errors import One4DInputError
from ..evaluation.reports import codec_report, coupling_report
from ..evaluation.suite import MODES, dataset_clip, mean_rows, run_suite, scene_rows, suite_seeds
from ..models import (
    ModelFolder,
    load_dit_component,
    load_vae_component,
    read_component_config,
    save_component,
    write_model_config,
)
from ..pipeline import One4DPipeline
from ..sharding import is_writer
from ..sampling import SamplerSettings
from ..text import TEXT_LEN, HashTextEncoder
from ..weights import save_one4d
from . import recipe
from .adapter_growth import init_one4d
from .ablation import ChannelConcatModel, WidthConcatModel
from .cache import write_cache
from .data import (
    LatentBatches,
    ProceduralClips,
    load_training_set,
    pointmap_videos,
    render_training_set,
    video_tensor,
)
from .latent_transplant import fitting_clips, latent_maps, transplant_dit
from .loop import StepSettings, fit_two_modalities, shifted_sigmas
from .real_data import DatasetClips, parse_data
from .tasks import parse_task_mix
from .trainer import Schedule, Trainer, log_values, pick_device
from .vae_growth import widen_latent

STAGES = ("data", "vae", "encode", "base", "one4d")  # "ablation" runs on demand
_DEFAULT_SEEDS = {"vae": 0}  # every other stage: 4 (the defaults the shipped weights were trained with)


def stage_seed(args: argparse.Namespace, stage: str) -> int:
    """``--seed``, else the stage's default: what the stage's batches and noise are drawn from."""
    return args.seed if args.seed is not None else _DEFAULT_SEEDS.get(stage, 4)


def stage_data(args: argparse.Namespace) -> None:
    render_training_set(args.work, args.clips)


def _vae_clips(args: argparse.Namespace, rgb: np.ndarray, xyz: np.ndarray | None, rng: np.random.Generator,
               photos: PhotoClips | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One VAE training batch and which of its clips are photos: windows of RGB clips, a share of them normalized
    pointmaps and a share (``--vae-photo-share``) pseudo-videos of natural photos (:mod:`one4d.data.photos`), half of
    them mirrored left-right (400 procedural clips are few; a mirrored room is as valid a picture), cut to random
    ``--vae-crop`` squares when asked: the VAE is convolutional, and a 32 x 32 crop costs a quarter of a 64 x 64
    frame, so a CPU sees four times the clips."""
    window, n = args.vae_window, args.vae_batch
    idx = rng.integers(0, len(rgb), n)
    start = rng.integers(0, recipe.FRAMES - window + 1, n)
    use_xyz = rng.random(n) < args.vae_pointmap_share if xyz is not None else np.zeros(n, bool)
    flip = rng.random(n) < 0.5
    crop = args.vae_crop or rgb.shape[2]
    top, left = rng.integers(0, rgb.shape[2] - crop + 1, n), rng.integers(0, rgb.shape[3] - crop + 1, n)
    clips = [(xyz if u else rgb)[i, s : s + window, y : y + crop, x : x + crop] for i, s, u, y, x in zip(idx, start, use_xyz, top, left)]
    clips = [c[:, :, ::-1] if f else c for c, f in zip(clips, flip)]
    is_photo = np.zeros(n, bool)
    if photos is not None:
        is_photo = rng.random(n) < args.vae_photo_share
        clips = [photos.draw(rng, window, crop) if p else c for c, p in zip(clips, is_photo)]
    return video_tensor(np.stack(clips)), torch.from_numpy(is_photo)


def _latent_statistics(vae, rgb: np.ndarray, cfg: dict) -> dict:
    """The VAE config ``cfg`` with the per-channel latent mean and std over (up to 16) full clips: 20,000
    values per channel at the embedded size, and cheap enough to write with every checkpoint."""
    device = next(vae.parameters()).device
    with torch.no_grad():
        sample = video_tensor(rgb[: min(16, len(rgb))])
        z = torch.cat([vae.encode(sample[i : i + 8].to(device)).latent_dist.mean.float().cpu() for i in range(0, len(sample), 8)])
    return dict(cfg, latents_mean=z.mean((0, 2, 3, 4)).tolist(), latents_std=z.std((0, 2, 3, 4)).tolist())


class _LatentAnchor:
    """A frozen copy of the ``--vae-init`` VAE: how far the training encoder's latent means have drifted
    from it, in the units the DiT reads (each channel divided by the init's latent std)."""

    def __init__(self, vae: torch.nn.Module, cfg: dict):
        if "latents_std" not in cfg:
            raise One4DInputError("--vae-anchor needs a --vae-init file with latent statistics (one written by "
                                  "`one4d train vae`); this one has none.")
        self.frozen = copy.deepcopy(vae).eval().requires_grad_(False)
        self.std = torch.tensor(cfg["latents_std"], dtype=torch.float32).view(1, -1, 1, 1, 1)

    def drift(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Mean squared normalized difference between ``mean`` (the training encoder's, for clips ``x``) and the
        frozen encoder's latent means of the same clips."""
        with torch.no_grad():
            old = self.frozen.encode(x).latent_dist.mean.float()
        return ((mean.float() - old) / self.std.to(old.device)).square().mean()


def schedule(args: argparse.Namespace, name: str, steps: int, lr: float, **kw) -> Schedule:
    """The stage's :class:`Schedule` from the shared options (time limit, checkpoint interval)."""
    return Schedule(steps=steps, lr=lr, state_path=args.work / f"{name}.state.pt", time_limit=args.time_limit * 60,
                    checkpoint_every=args.checkpoint_every, bf16={"auto": None, "bf16": True, "fp32": False}[args.precision], **kw)


def stage_vae(args: argparse.Namespace) -> bool:
    if args.vae_train == "decoder" and not args.vae_init:
        raise One4DInputError("--vae-train decoder fine-tunes an existing VAE; give it with --vae-init.")
    if args.vae_anchor and (not args.vae_init or args.vae_train == "decoder" or args.vae_z_dim):
        raise One4DInputError("--vae-anchor keeps the latents of the --vae-init VAE while its encoder trains: give the VAE "
                              "with --vae-init, train all of it (--vae-train all) and keep its channels (no --vae-z-dim).")
    if args.vae_z_dim and (not args.vae_init or args.vae_train == "decoder"):
        raise One4DInputError("--vae-z-dim widens the latent of a trained VAE: give it with --vae-init, and train "
                              "all of it (--vae-train all); a new VAE takes its channels from the recipe.")
    data = load_training_set(args.work)
    rgb = data["rgb"]
    photos = PhotoClips(photo_files(args.vae_photos)) if args.vae_photo_share > 0 else None
    xyz = None
    if args.vae_pointmap_share > 0:
        xyz = pointmap_videos(data)
    torch.manual_seed(0)
    device = pick_device(args.device)
    cfg = read_component_config(Path(args.vae_init)) if args.vae_init else dict(recipe.VAE_CONFIGS[args.vae_arch])
    state = read_safetensors(args.vae_init) if args.vae_init else None
    if args.vae_z_dim and args.vae_z_dim != cfg["z_dim"]:
        state, cfg = widen_latent(state, cfg, args.vae_z_dim)
    vae = build_vae(cfg).train()
    stride = vae_geometry(cfg).space_stride
    if args.vae_crop and (args.vae_crop % stride or not stride <= args.vae_crop <= min(rgb.shape[2:4])):
        raise One4DInputError(f"--vae-crop {args.vae_crop} must be a multiple of the VAE's stride {stride} "
                              f"between {stride} and {min(rgb.shape[2:4])} pixels; e.g. --vae-crop 32, or 0 for whole frames.")
    if state is not None:
        vae.load_state_dict(state)
    if args.vae_train == "decoder":  # the latent space (and every model trained on it) stays as it is
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    vae.to(device)
    precision.conv3d_in_fp32_above(vae)  # torch's CPU bf16 Conv3d gradients go wrong on whole frames (one4d.precision)
    anchor = _LatentAnchor(vae, cfg) if args.vae_anchor else None
    seed = stage_seed(args, "vae")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    sched = schedule(args, "vae", args.vae_steps, args.vae_lr, betas=(0.9, 0.99), clip_norm=args.vae_clip)
    trainer = Trainer(vae, sched, {"data": rng, "noise": gen}, args.work, "vae", device,
                      identity={"vae_anchor": args.vae_anchor} if anchor is not None else {})

    def step(_model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, float]]:  # one process: encode/decode called directly
        x, is_photo = _vae_clips(args, rgb, xyz, rng, photos)
        x = x.to(device)
        with torch.set_grad_enabled(args.vae_train == "all"):
            post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)
        rec = vae.decode(z).sample.float()
        l1 = (rec - x).abs().mean()
        mse = (rec - x).square().mean()
        kl = post.kl().float().mean() / x[0].numel()
        loss = l1 + mse + args.vae_kl * kl
        logged = {"l1": l1.item(), "psnr": 10 * math.log10(4 / max(mse.item(), 1e-12)), "kl": kl.item()}
        if anchor is not None and not is_photo.all():
            procedural = ~is_photo.to(device)
            drift = anchor.drift(x[procedural], post.mean[procedural])
            loss = loss + args.vae_anchor * drift
            logged["drift"] = drift.item()
        return loss, {"loss": loss.item(), **logged}

    def write(step: int) -> None:
        if not is_writer():
            return
        vae.eval()
        # decoder-only fine-tuning keeps the encoder, so its latent statistics stay bit for bit; an anchored encoder keeps
        # the init's statistics, the normalization the DiT was trained with
        out = cfg if args.vae_train == "decoder" or anchor is not None else _latent_statistics(vae, rgb, cfg)
        save_component({k: v.cpu() for k, v in vae.state_dict().items()}, out, args.work / "vae.safetensors")
        if args.vae_validate_scenes > 0:  # the round trip on held-out validation scenes: the curve to judge the VAE by
            # (a round trip does not depend on the latent statistics, so the training VAE serves as it is)
            report = codec_report(VideoCodec(vae), suite_seeds(args.vae_validate_scenes, first=100))
            log_values(args.work, "vae-validation", step, **report)
            print(f"step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in report.items()))
        vae.train()

    return trainer.run(step, write)


def training_model(args: argparse.Namespace) -> ModelFolder:
    """The model a stage builds on: ``--model`` (e.g. a folder naming real Wan files), else the work folder
    of the embedded recipe, whose VAE and base DiT the earlier stages wrote."""
    if args.model:
        return ModelFolder.open(args.model, require=("vae", "dit"))
    return ModelFolder(args.work, dict(recipe.MODEL_LAYOUT))


def clip_spec(args: argparse.Namespace, folder: ModelFolder, crop: str) -> ClipSpec:
    """The clip cut from real sequences: ``--clip-frames/--clip-height/--clip-width`` (default: the model kind's
    clip) at ``--frame-stride``."""
    d = folder.defaults
    return ClipSpec(args.clip_frames or d.frames, args.clip_height or d.height, args.clip_width or d.width, args.frame_stride, crop)


def stage_encode(args: argparse.Namespace) -> None:
    folder = training_model(args)
    encoder = folder.text_encoder() if args.model else folder.text_encoder(text_dim=recipe.TEXT_DIM)
    codec = VideoCodec(folder.load_vae())
    if args.data:  # real 4D datasets, cut to the model's clip (its kind's size unless told otherwise)
        source = DatasetClips(parse_data(args.data), clip_spec(args, folder, crop="random"), codec.geometry, args.clips_per_sequence,
                               stage_seed(args, "encode"))
    else:
        source = ProceduralClips(args.work)
    write_cache(args.work, source, codec, encoder, getattr(encoder, "length", TEXT_LEN), args.shard_size)


def _base_init_state(args: argparse.Namespace, dit_cfg: dict, geometry: LatentGeometry) -> dict[str, torch.Tensor]:
    """The ``--base-init`` DiT's weights, carried into this work folder's latent space when ``--base-init-vae``
    names the VAE it was trained on (:mod:`one4d.training.latent_transplant`)."""
    path = Path(args.base_init)
    cfg = read_component_config(path)
    if {k: cfg.get(k) for k in dit_cfg} != dit_cfg:
        differ = sorted(k for k in dit_cfg if cfg.get(k) != dit_cfg[k])
        raise One4DInputError(f"--base-init {path.name}: its DiT differs from the one this recipe trains on this VAE "
                              f"({', '.join(differ)}); start from a DiT of the same recipe, or leave --base-init out.")
    state = read_safetensors(path)
    if args.base_init_vae:
        old = VideoCodec(load_vae_component(Path(args.base_init_vae)))
        new = VideoCodec(training_model(args).load_vae())
        if old.geometry.with_patch(geometry.patch) != geometry:
            raise One4DInputError(f"--base-init-vae {Path(args.base_init_vae).name}: its strides and channels differ from "
                                  "this work folder's VAE; a DiT is carried only between VAEs of one geometry.")
        data = load_training_set(args.work)
        old_from_new, new_from_old, r2 = latent_maps(old, new, fitting_clips(data))
        print(f"base: --base-init carried into this VAE's latents (a rotation, R^2 {r2:.3f} on 96 training clips)")
        state = transplant_dit(state, geometry, old_from_new, new_from_old)
    return state


def stage_base(args: argparse.Namespace) -> bool:
    torch.manual_seed(0)
    device = pick_device(args.device)
    batches = LatentBatches(args.work, seed=2)
    dit_cfg = recipe.dit_config_for(batches.geometry)
    if args.base_init_vae and not args.base_init:
        raise One4DInputError("--base-init-vae names the VAE of a --base-init DiT; give the DiT with --base-init too.")
    dit = build_dit(dit_cfg)
    if args.base_init:
        dit.load_state_dict(_base_init_state(args, dit_cfg, batches.geometry))
    dit = dit.to(device).train()
    gen = torch.Generator().manual_seed(3)
    settings = StepSettings()
    sched = schedule(args, "base", args.base_steps, args.base_lr, weight_decay=0.01)
    trainer = Trainer(dit, sched, {"data": batches.rng, "noise": gen}, args.work, "base", device)

    def step(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        rgb0, _, mask, cond, ctx = (t.to(device) for t in batches.draw(args.batch))
        b = rgb0.shape[0]
        sigma = shifted_sigmas(torch.rand(b, generator=gen), settings.shift).to(device)
        eps = torch.randn(rgb0.shape, generator=gen).to(device)
        s = sigma.view(b, 1, 1, 1, 1)
        keep = (torch.rand(b, generator=gen) >= settings.text_dropout).float().view(b, 1, 1).to(device)
        x = torch.cat([(1 - s) * rgb0 + s * eps, mask, cond], dim=1)
        v = model(x, sigma * 1000, ctx * keep, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(v.float(), eps - rgb0)
        return loss, {"loss": loss.item()}

    def write(_step: int) -> None:
        if is_writer():
            save_component({k: v.cpu() for k, v in dit.state_dict().items()}, dit_cfg, args.work / "dit.safetensors")

    return trainer.run(step, write)


def output_layout(args: argparse.Namespace, folder: ModelFolder) -> dict:
    """The ``model.json`` of the work folder once it holds One4D weights: the embedded recipe's own layout,
    or the ``--model`` folder's with its files made absolute and the new weights in the work folder."""
    if not args.model:
        return dict(recipe.MODEL_LAYOUT)
    layout = json.loads(json.dumps(folder.layout))
    layout["files"] = {n: str(folder.file(n).resolve()) for n in ("dit", "vae")} | {"one4d": "one4d.safetensors"}
    spec = layout["text_encoder"]
    for key in ("weights", "tokenizer"):
        if key in spec:
            spec[key] = str((folder.path / spec[key]).resolve())
    return layout


def validation_clips(args: argparse.Namespace, folder: ModelFolder, geometry) -> list:
    """The held-out clips the evaluation metrics run on: ``--validate-clips`` clips of the ``--validate-data``
    datasets (each sequence's first frames, center-cropped to the training clip), else the procedural validation
    scenes (seeds 1,000,100 on; ``--validate-scenes`` of them)."""
    if args.validate_data:
        source = DatasetClips(parse_data(args.validate_data), clip_spec(args, folder, crop="center"), geometry, 1, seed=None)
        return [dataset_clip(source.training_clip(i)) for i in range(min(args.validate_clips, len(source)))]
    return [render_scene(s) for s in suite_seeds(args.validate_scenes, first=100)] if args.validate_scenes else []


def validation(args: argparse.Namespace, folder: ModelFolder, model: One4DModel) -> Callable[[int], None]:
    """What runs with every checkpoint of the one4d stage, logged as ``validation`` records and printed:

    - the evaluation metrics (:mod:`one4d.evaluation.suite`: depth AbsRel and delta<1.25, camera ATE/RPE, RGB
      PSNR on the observed frames) in each of ``--validate-modes``, sampled with ``--validate-steps`` steps
      (0: none) on :func:`validation_clips`;
    - the coupling report (how much the pointmap prediction reads the video: x0 error with the scene's own
      video vs another's) on ``--validate-scenes`` procedural validation scenes (at least 2).
    Not the evaluation suite's scenes, so the suite stays held out from every training decision."""
    seeds = suite_seeds(args.validate_scenes, first=100) if args.validate_scenes >= 2 else []
    modes = tuple(m for m in args.validate_modes.split(",") if m)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise One4DInputError(f"--validate-modes {args.validate_modes}: {', '.join(unknown)} unknown; use some of {', '.join(MODES)}.")
    codec = VideoCodec(folder.load_vae())
    clips = validation_clips(args, folder, codec.geometry) if args.validate_steps and modes else []
    if not seeds and not clips:
        return lambda step: None
    text = folder.text_encoder() if args.model else folder.text_encoder(text_dim=recipe.TEXT_DIM)
    d = folder.defaults
    pipe = One4DPipeline(model, codec, text, defaults=d)
    settings = SamplerSettings(args.validate_steps, d.guidance, d.shift, d.scheduler, seed=0)

    def run(step: int) -> None:  # on every process: a sharded model runs forward on all of them
        record, lines = {}, []
        if clips:
            for mode, rows in scene_rows(pipe, clips, modes, settings, with_base=False).items():
                mean = mean_rows(rows)
                record.update({f"{mode}_{k}": v for k, v in mean.items() if v is not None})
                shown = {k: "-" if v is None else f"{v:.3f}" for k, v in mean.items()}
                rgb = f", RGB {mean['rgb_psnr']:.2f} dB" if mean["rgb_psnr"] is not None else ""
                lines.append(f"{mode} AbsRel {shown['depth_absrel']}, delta<1.25 {shown['delta_1_25']}, ATE {shown['ate']}{rgb}")
        if seeds:
            report = coupling_report(pipe, seeds)
            record.update({f"{k}_{n}": v for k, row in report.items() for n, v in row.items()})
            lines.append("coupling " + ", ".join(f"{k} own {r['own']:.4f} / swapped {r['swapped']:.4f} / unlinked {r['unlinked']:.4f}"
                                                 for k, r in report.items()))
        if not is_writer():
            return
        log_values(args.work, "validation", step, **record)
        print(f"step {step}: " + "; ".join(lines))

    return run


def one4d_training_model(args: argparse.Namespace, folder: ModelFolder, device: torch.device) -> One4DModel:
    """The model the one4d stage trains: the folder's frozen base (in its dtype, or stored in fp8 with
    ``--base-storage fp8``) with the ``rgb``/``xyz`` LoRAs and links, which train in fp32 whatever the base's
    dtype (AdamW's updates are far below bf16's resolution; on CUDA autocast still computes in bf16)."""
    dit, variant = folder.load_dit()
    dit.requires_grad_(False)
    if args.base_storage == "fp8":
        if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true":
            raise One4DInputError("--base-storage fp8 is for one GPU; under FSDP the base is already sharded across the "
                                  "GPUs. Drop --base-storage fp8, or launch without the FSDP configuration.")
        precision.store_in_fp8(dit, next(p.dtype for p in dit.parameters() if p.is_floating_point()), device)
    links = default_link_layers(variant.config["num_layers"], args.links) if args.links else None
    model = One4DModel(dit, variant, DLCConfig(rank=args.rank or (64 if args.model else recipe.RANK), alpha=args.alpha, link_layers=links))
    for p in model.trainable_parameters():
        p.data = p.data.float()
    if args.one4d_init:
        init_one4d(model, args.one4d_init)
    if args.grad_checkpointing:
        model.enable_gradient_checkpointing()
    return model


def stage_one4d(args: argparse.Namespace) -> bool:
    torch.manual_seed(0)
    folder = training_model(args)
    device = pick_device(args.device)
    model = one4d_training_model(args, folder, device)
    out = args.work / "one4d.safetensors"
    validate = validation(args, folder, model)

    def write(step: int) -> None:
        save_one4d(model, out, {"trained_steps": str(step)})
        if is_writer():
            write_model_config(args.work, output_layout(args, folder))
        validate(step)

    sched = schedule(args, "one4d", args.one4d_steps, args.one4d_lr)
    seed = stage_seed(args, "one4d")
    batches = LatentBatches(args.work, seed=seed, mix=parse_task_mix(args.task_mix) if args.task_mix else None)
    return fit_two_modalities(model, batches, sched, args.batch, args.work, "one4d", seed + 1, device, write, args.accumulate,
                              step_settings(args))


def step_settings(args: argparse.Namespace) -> StepSettings:
    """The one4d stage's loss settings from ``--sigma-shift``, ``--xyz-weight`` and ``--text-dropout``."""
    for name, value, ok in (("--sigma-shift", args.sigma_shift, args.sigma_shift > 0), ("--xyz-weight", args.xyz_weight, args.xyz_weight >= 0),
                            ("--text-dropout", args.text_dropout, 0 <= args.text_dropout < 1)):
        if not (ok and math.isfinite(value)):
            raise One4DInputError(f"{name} {value} is out of range: the shift must be > 0, the weight >= 0, the dropout in [0, 1).")
    return StepSettings(shift=args.sigma_shift, xyz_weight=args.xyz_weight, text_dropout=args.text_dropout)


def stage_ablation(args: argparse.Namespace) -> None:
    """DLC vs. channel concatenation vs. width-wise concatenation: same data, steps, batch and lr."""
    codec = VideoCodec(load_vae_component(args.work / "vae.safetensors"))
    builders = {
        "dlc": lambda d, v: One4DModel(d, v, DLCConfig(rank=recipe.RANK)),
        "channel": lambda d, v: ChannelConcatModel(d, v, recipe.RANK),
        "width": lambda d, v: WidthConcatModel(d, v, recipe.RANK),
    }
    settings = SamplerSettings(steps=args.eval_steps, guidance=EMBEDDED.guidance, seed=0)
    report = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        dit, variant = load_dit_component(args.work / "dit.safetensors")
        model = build(dit, variant)
        sched = Schedule(args.ablation_steps, args.one4d_lr, args.work / f"ablation-{name}.state.pt")
        t0 = time.time()
        fit_two_modalities(model, LatentBatches(args.work, seed=4), sched, args.batch, args.work, f"ablation-{name}", 5)
        seconds = time.time() - t0
        pipe = One4DPipeline(model, codec, HashTextEncoder(variant.config["text_dim"], recipe.TEXT_LENGTH))
        with_base = name == "dlc"  # the base model is the same for every variant: measure it once
        res = run_suite(pipe, suite_seeds(args.ablation_scenes), ("full", "single"), settings, with_base=with_base)
        report[name] = {"train_seconds": seconds, "trainable_params": sum(p.numel() for p in model.trainable_parameters()), **res}
        log_values(args.work, "ablation", -1, variant=name, **{f"{m}_{k}": v for m, r in res.items() for k, v in r.items()})
    (args.work / "ablation.json").write_text(json.dumps(report, indent=1))


STAGE_FUNCTIONS = {"data": stage_data, "vae": stage_vae, "encode": stage_encode, "base": stage_base, "one4d": stage_one4d,
                   "ablation": stage_ablation}


def run_stages(args: argparse.Namespace) -> int:
    """Run one stage, or all of :data:`STAGES` in order, in the work folder ``args.work``."""
    args.work = Path(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    todo = STAGES if args.stage == "all" else (args.stage,)
    torch.set_num_threads(args.threads)
    for name in todo:
        t0 = time.time()
        finished = STAGE_FUNCTIONS[name](args) is not False
        log_values(args.work, name, -1, seconds=time.time() - t0, finished=finished)
        print(f"stage {name}: {time.time() - t0:.1f} s")
        if not finished:  # stopped by --time-limit: later stages need this one's output
            break
    return 0
