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
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..backbone import build_dit, build_vae, read_safetensors
from ..codec import VideoCodec
from ..defaults import EMBEDDED
from ..dlc import DLCConfig, One4DModel
from ..errors import One4DInputError
from ..evaluation.suite import run_suite, suite_seeds
from ..models import load_dit_component, load_vae_component, read_component_config, save_component, write_model_config
from ..pipeline import One4DPipeline
from ..sampling import SamplerSettings
from ..text import HashTextEncoder
from ..weights import load_one4d_into, save_one4d
from . import recipe
from .ablation import ChannelConcatModel, WidthConcatModel
from .data import LatentBatches, encode_training_set, normalized_pointmaps, render_training_set, video_tensor
from .loop import StepSettings, cosine_lr, fit_two_modalities, log_values, shifted_sigmas

STAGES = ("data", "vae", "encode", "base", "one4d")  # "ablation" runs on demand


def stage_data(args: argparse.Namespace) -> None:
    render_training_set(args.work, args.clips)


def _vae_clips(args: argparse.Namespace, rgb: np.ndarray, xyz: np.ndarray | None, rng: np.random.Generator) -> torch.Tensor:
    """One VAE training batch: windows of RGB clips, a share of them normalized pointmaps."""
    window = args.vae_window
    idx = rng.integers(0, len(rgb), args.vae_batch)
    start = rng.integers(0, recipe.FRAMES - window + 1, args.vae_batch)
    use_xyz = rng.random(args.vae_batch) < args.vae_pointmap_share if xyz is not None else np.zeros(args.vae_batch, bool)
    return video_tensor(np.stack([(xyz if u else rgb)[i, s : s + window] for i, s, u in zip(idx, start, use_xyz)]))


def _latent_statistics(vae, rgb: np.ndarray) -> dict:
    """The VAE config with the per-channel latent mean and std over (up to 64) full clips."""
    with torch.no_grad():
        sample = video_tensor(rgb[: min(64, len(rgb))])
        z = torch.cat([vae.encode(sample[i : i + 8]).latent_dist.mean for i in range(0, len(sample), 8)])
    return dict(recipe.VAE_CONFIG, latents_mean=z.mean((0, 2, 3, 4)).tolist(), latents_std=z.std((0, 2, 3, 4)).tolist())


def stage_vae(args: argparse.Namespace) -> None:
    if args.vae_train == "decoder" and not args.vae_init:
        raise One4DInputError("--vae-train decoder fine-tunes an existing VAE; give it with --vae-init.")
    data = np.load(args.work / "data.npz")
    rgb = data["rgb"]
    xyz = None
    if args.vae_pointmap_share > 0:  # normalized pointmaps as 3-channel videos, mapped to [0, 255] like RGB
        xyz = ((normalized_pointmaps(data) * 0.5 + 0.5) * 255).round().astype(np.uint8)
    torch.manual_seed(0)
    vae = build_vae(recipe.VAE_CONFIG).train()
    if args.vae_init:
        vae.load_state_dict(read_safetensors(args.vae_init))
    if args.vae_train == "decoder":  # the latent space (and every model trained on it) stays as it is
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=args.vae_lr, weight_decay=0.0, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    for step in range(args.vae_steps):
        x = _vae_clips(args, rgb, xyz, rng)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.vae_steps, args.vae_lr)
        with torch.set_grad_enabled(args.vae_train == "all"):
            post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        l1 = (rec - x).abs().mean()
        mse = (rec - x).square().mean()
        kl = post.kl().mean() / x[0].numel()
        loss = l1 + mse + args.vae_kl * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0 or step == args.vae_steps - 1:
            log_values(args.work, "vae", step, loss=loss.item(), l1=l1.item(), psnr=10 * math.log10(4 / max(mse.item(), 1e-12)), kl=kl.item())
    vae.eval()
    # decoder-only fine-tuning keeps the encoder, so its latent statistics stay bit for bit
    cfg = read_component_config(Path(args.vae_init)) if args.vae_train == "decoder" else _latent_statistics(vae, rgb)
    save_component(vae.state_dict(), cfg, args.work / "vae.safetensors")


def stage_encode(args: argparse.Namespace) -> None:
    encode_training_set(args.work, VideoCodec(load_vae_component(args.work / "vae.safetensors")))


def stage_base(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    batches = LatentBatches(args.work, seed=2)
    dit = build_dit(recipe.DIT_CONFIG).train()
    opt = torch.optim.AdamW(dit.parameters(), lr=args.base_lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(3)
    settings = StepSettings()
    for step in range(args.base_steps):
        rgb0, _, mask, cond, ctx = batches.draw(args.batch)
        b = rgb0.shape[0]
        sigma = shifted_sigmas(torch.rand(b, generator=gen), settings.shift)
        eps = torch.randn(rgb0.shape, generator=gen)
        s = sigma.view(b, 1, 1, 1, 1)
        keep = (torch.rand(b, generator=gen) >= settings.text_dropout).float().view(b, 1, 1)
        x = torch.cat([(1 - s) * rgb0 + s * eps, mask, cond], dim=1)
        v = dit(x, sigma * 1000, ctx * keep, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(v, eps - rgb0)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, args.base_steps, args.base_lr)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dit.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == args.base_steps - 1:
            log_values(args.work, "base", step, loss=loss.item())
    save_component(dit.state_dict(), recipe.DIT_CONFIG, args.work / "dit.safetensors")


def stage_one4d(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    dit, variant = load_dit_component(args.work / "dit.safetensors")
    model = One4DModel(dit, variant, DLCConfig(rank=recipe.RANK))
    if args.one4d_init:
        load_one4d_into(model, args.one4d_init)
    out = args.work / "one4d.safetensors"
    fit_two_modalities(model, LatentBatches(args.work, seed=args.seed), args.one4d_steps, args.one4d_lr, args.batch, args.work,
                       "one4d", args.seed + 1, lambda step: save_one4d(model, out, {"trained_steps": str(step)}), args.checkpoint_every)
    save_one4d(model, out, {"trained_steps": str(args.one4d_steps)})
    write_model_config(args.work, recipe.MODEL_LAYOUT)


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
        seconds = fit_two_modalities(model, LatentBatches(args.work, seed=4), args.ablation_steps, args.one4d_lr,
                                     args.batch, args.work, f"ablation-{name}", 5)
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
        STAGE_FUNCTIONS[name](args)
        log_values(args.work, name, -1, seconds=time.time() - t0)
        print(f"stage {name}: {time.time() - t0:.1f} s")
    return 0
