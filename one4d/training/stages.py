"""``one4d train``: the embedded model's training recipe, stage by stage (PAPER.md section 6 in miniature).

Stages (each reads the previous stage's output from ``--work``):
  data   render procedural 4D clips (training seeds only)
  vae    train the small Wan VAE on RGB clips (short windows first: cheaper; then full clips, which
         teach the causal feature cache across chunks), then record latent statistics
  encode encode every clip once: RGB, normalized pointmap, and UMC conditioning videos (image, one
         sparse draw; text = the all-gray video; full video = the RGB latents themselves)
  base   train the Wan-Fun-InP-style base DiT on RGB with random UMC masks: the "foundation model"
  one4d  freeze the base and train the rgb/xyz LoRAs and control links on RGB + pointmaps with the task mix
``all`` runs them in order. ``ablation`` (on demand) trains DLC, channel concatenation and width-wise
concatenation with one shared LoRA on the same data and budget and evaluates them (``ablation.json``). Losses go to ``<work>/log.jsonl``; weights to ``--assets``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import recipe as emb
from ..backbone import build_dit, build_vae
from ..codec import VideoCodec
from ..dlc import DLCConfig, One4DModel
from ..errors import One4DInputError
from ..pointmap import fit_normalization, normalize
from ..sampling import SamplerSettings
from .loop import StepSettings, cosine_lr, default_task_mix, draw_task, flow_matching_loss, shifted_sigmas
from ..umc import build_condition_video, build_mask, sparse_indices

STAGES = ("data", "vae", "encode", "base", "one4d")  # "ablation" runs on demand


def _log(work: Path, stage: str, step: int, **values: float) -> None:
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps({"stage": stage, "step": step, "time": time.time(), **values}) + "\n")


def stage_data(args: argparse.Namespace) -> None:
    from ..data import render_dataset

    ds = render_dataset(range(args.clips), frames=emb.FRAMES, height=emb.HEIGHT, width=emb.WIDTH)
    np.savez(
        args.work / "data.npz",
        rgb=(ds["rgb"] * 255).round().astype(np.uint8),
        points=ds["points"].astype(np.float32),
        valid=ds["valid"],
        captions=np.array(ds["captions"]),
    )


def _video(rgb_u8: np.ndarray) -> torch.Tensor:
    """[N, F, H, W, 3] uint8 -> [N, 3, F, H, W] in [-1, 1]."""
    return torch.from_numpy(rgb_u8).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)


def stage_vae(args: argparse.Namespace) -> None:
    if args.vae_train == "decoder" and not args.vae_init:
        raise One4DInputError("--vae-train decoder fine-tunes an existing VAE; give it with --vae-init.")
    data = np.load(args.work / "data.npz")
    rgb = data["rgb"]
    xyz = None
    if args.vae_pointmap_share > 0:  # normalized pointmaps as 3-channel videos, mapped to [0, 255] like RGB
        pts = np.stack([normalize(p, fit_normalization(p, v)) for p, v in zip(data["points"], data["valid"])])
        xyz = ((pts * 0.5 + 0.5) * 255).round().astype(np.uint8)
    torch.manual_seed(0)
    vae = build_vae(emb.VAE_CONFIG).train()
    if args.vae_init:
        from ..backbone import read_safetensors

        vae.load_state_dict(read_safetensors(args.vae_init))
    if args.vae_train == "decoder":  # the latent space (and every model trained on it) stays as it is
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in vae.parameters() if p.requires_grad], lr=args.vae_lr, weight_decay=0.0, betas=(0.9, 0.99))
    rng = np.random.default_rng(0)
    window = args.vae_window
    for step in range(args.vae_steps):
        idx = rng.integers(0, len(rgb), args.vae_batch)
        start = rng.integers(0, emb.FRAMES - window + 1, args.vae_batch)
        use_xyz = rng.random(args.vae_batch) < args.vae_pointmap_share if xyz is not None else np.zeros(args.vae_batch, bool)
        clip = np.stack([(xyz if u else rgb)[i, s : s + window] for i, s, u in zip(idx, start, use_xyz)])
        x = _video(clip)
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
            _log(args.work, "vae", step, loss=loss.item(), l1=l1.item(), psnr=10 * math.log10(4 / max(mse.item(), 1e-12)), kl=kl.item())
    vae.eval()
    if args.vae_train == "decoder":  # same encoder: keep its latent statistics bit for bit
        cfg = emb.read_config(Path(args.vae_init))
    else:
        with torch.no_grad():  # latent statistics for normalization, on full clips
            sample = _video(rgb[: min(64, len(rgb))])
            z = torch.cat([vae.encode(sample[i : i + 8]).latent_dist.mean for i in range(0, len(sample), 8)])
        cfg = dict(emb.VAE_CONFIG, latents_mean=z.mean((0, 2, 3, 4)).tolist(), latents_std=z.std((0, 2, 3, 4)).tolist())
    emb.save_component(vae.state_dict(), cfg, args.work / "vae.safetensors")


def _encode_batches(codec: VideoCodec, videos: torch.Tensor, batch: int = 8) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([codec.encode(videos[i : i + batch]) for i in range(0, len(videos), batch)]).half()


def stage_encode(args: argparse.Namespace) -> None:
    data = np.load(args.work / "data.npz")
    codec = VideoCodec(emb.load_embedded_vae(args.work / "vae.safetensors"))
    n, f = data["rgb"].shape[:2]
    rgb = _video(data["rgb"])
    pts = np.stack([normalize(p, fit_normalization(p, v)) for p, v in zip(data["points"], data["valid"])])
    xyz = torch.from_numpy(pts).permute(0, 4, 1, 2, 3)
    rng = np.random.default_rng(1)
    sparse = [sparse_indices(f, math.exp(rng.uniform(math.log(0.1), math.log(0.5)))) for _ in range(n)]
    frames01 = torch.from_numpy(data["rgb"]).float() / 255
    image_videos = torch.cat([build_condition_video(frames01[i, :1], [0], f) for i in range(n)])
    sparse_videos = torch.cat([build_condition_video(frames01[i, sparse[i]], sparse[i], f) for i in range(n)])
    gray = torch.zeros(1, 3, f, emb.HEIGHT, emb.WIDTH)
    out = {
        "rgb": _encode_batches(codec, rgb),
        "xyz": _encode_batches(codec, xyz),
        "cond_image": _encode_batches(codec, image_videos),
        "cond_sparse": _encode_batches(codec, sparse_videos),
        "cond_text": _encode_batches(codec, gray),
    }
    np.savez(args.work / "latents.npz", **{k: v.numpy() for k, v in out.items()},
             sparse=_pad_indices(sparse, f))


def _pad_indices(lists: list[list[int]], f: int) -> np.ndarray:
    out = np.full((len(lists), f), -1, np.int64)
    for i, idx in enumerate(lists):
        out[i, : len(idx)] = idx
    return out


class LatentBatches:
    """Training batches from the encoded set: clean latents, a UMC task draw per clip, and text contexts."""

    def __init__(self, work: Path, seed: int):
        lat = np.load(work / "latents.npz")
        self.lat = {k: torch.from_numpy(lat[k]).float() for k in lat.files if k != "sparse"}
        self.sparse = lat["sparse"]
        captions = np.load(work / "data.npz")["captions"]
        enc = emb.HashTextEncoder(emb.DIT_CONFIG["text_dim"])
        self.context = torch.cat([enc(str(c)) for c in captions])
        self.rng = np.random.default_rng(seed)
        self.mix = default_task_mix()
        self.frames = emb.FRAMES

    def __len__(self) -> int:
        return len(self.context)

    def draw(self, batch: int, clips: np.ndarray | None = None):
        idx = clips if clips is not None else self.rng.integers(0, len(self), batch)
        tasks = [draw_task(self.rng, self.mix) for _ in idx]
        hw = self.lat["rgb"].shape[-2:]
        masks, conds = [], []
        for i, task in zip(idx, tasks):
            if task == "text":
                ind, cond = [], self.lat["cond_text"][0]
            elif task == "image":
                ind, cond = [0], self.lat["cond_image"][i]
            elif task == "video":
                ind, cond = list(range(self.frames)), self.lat["rgb"][i]
            else:
                ind = [int(j) for j in self.sparse[i] if j >= 0]
                cond = self.lat["cond_sparse"][i]
            masks.append(build_mask(ind, self.frames, tuple(hw)))
            conds.append(cond[None])
        return (self.lat["rgb"][idx], self.lat["xyz"][idx], torch.cat(masks), torch.cat(conds), self.context[idx])


def stage_base(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    batches = LatentBatches(args.work, seed=2)
    dit = build_dit(emb.DIT_CONFIG).train()
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
            _log(args.work, "base", step, loss=loss.item())
    emb.save_component(dit.state_dict(), emb.DIT_CONFIG, args.work / "dit.safetensors")


def fit_two_modalities(model, batches: "LatentBatches", steps: int, lr: float, batch: int, work: Path, tag: str, seed: int,
                       checkpoint=None, checkpoint_every: int = 0) -> float:
    """Train a two-modality model's trainable parameters with the rectified-flow loss; returns seconds.

    ``checkpoint(step)`` is called every ``checkpoint_every`` steps (0: never), so a long run that is
    interrupted still leaves its latest weights."""
    params = model.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    settings = StepSettings()
    model.train()
    t0 = time.time()
    for step in range(steps):
        rgb0, xyz0, mask, cond, ctx = batches.draw(batch)
        loss, parts = flow_matching_loss(model, rgb0, xyz0, mask, cond, ctx, settings, gen)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            _log(work, tag, step, **parts)
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            model.eval()
            checkpoint(step + 1)
            model.train()
    model.eval()
    return time.time() - t0


def stage_one4d(args: argparse.Namespace) -> None:
    from ..weights import save_one4d

    torch.manual_seed(0)
    dit, variant = emb.load_embedded_dit(args.work / "dit.safetensors")
    model = One4DModel(dit, variant, DLCConfig(rank=emb.RANK))
    if args.one4d_init:
        from ..weights import load_one4d_into

        load_one4d_into(model, args.one4d_init)
    out = args.work / "one4d.safetensors"
    fit_two_modalities(model, LatentBatches(args.work, seed=args.seed), args.one4d_steps, args.one4d_lr, args.batch, args.work,
                       "one4d", args.seed + 1, lambda step: save_one4d(model, out, {"trained_steps": str(step)}), args.checkpoint_every)
    save_one4d(model, out, {"trained_steps": str(args.one4d_steps)})


def stage_ablation(args: argparse.Namespace) -> None:
    """DLC vs. channel concatenation vs. width-wise concatenation: same data, steps, batch and lr."""
    from .ablation import ChannelConcatModel, WidthConcatModel
    from ..evaluation.suite import run_suite, suite_seeds
    from ..pipeline import One4DPipeline

    codec = VideoCodec(emb.load_embedded_vae(args.work / "vae.safetensors"))
    builders = {
        "dlc": lambda d, v: One4DModel(d, v, DLCConfig(rank=emb.RANK)),
        "channel": lambda d, v: ChannelConcatModel(d, v, emb.RANK),
        "width": lambda d, v: WidthConcatModel(d, v, emb.RANK),
    }
    settings = SamplerSettings(steps=args.eval_steps, guidance=emb.GUIDANCE, seed=0)
    report = {}
    for name, build in builders.items():
        torch.manual_seed(0)
        dit, variant = emb.load_embedded_dit(args.work / "dit.safetensors")
        model = build(dit, variant)
        seconds = fit_two_modalities(model, LatentBatches(args.work, seed=4), args.ablation_steps, args.one4d_lr,
                                     args.batch, args.work, f"ablation-{name}", 5)
        pipe = One4DPipeline(model, codec, emb.HashTextEncoder(variant.config["text_dim"]))
        with_base = name == "dlc"  # the base model is the same for every variant: measure it once
        res = run_suite(pipe, suite_seeds(args.ablation_scenes), ("full", "single"), settings, with_base=with_base)
        report[name] = {"train_seconds": seconds, "trainable_params": sum(p.numel() for p in model.trainable_parameters()), **res}
        _log(args.work, "ablation", -1, variant=name, **{f"{m}_{k}": v for m, r in res.items() for k, v in r.items()})
    (args.work / "ablation.json").write_text(json.dumps(report, indent=1))


def run_stages(args: argparse.Namespace) -> int:
    args.work = Path(args.work)
    args.work.mkdir(parents=True, exist_ok=True)
    todo = STAGES if args.stage == "all" else (args.stage,)
    fns = {"data": stage_data, "vae": stage_vae, "encode": stage_encode, "base": stage_base, "one4d": stage_one4d,
           "ablation": stage_ablation}
    torch.set_num_threads(args.threads)
    for name in todo:
        t0 = time.time()
        fns[name](args)
        _log(args.work, name, -1, seconds=time.time() - t0)
        print(f"stage {name}: {time.time() - t0:.1f} s")
    return 0


def add_parser(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("stage", choices=(*STAGES, "ablation", "all"))
    p.add_argument("--work", default="runs/embedded", help="folder for data, latents, logs and weights")
    p.add_argument("--clips", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--vae-steps", type=int, default=600)
    p.add_argument("--vae-batch", type=int, default=4)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--vae-kl", type=float, default=1e-4)
    p.add_argument("--vae-pointmap-share", type=float, default=0.0,
                   help="fraction of VAE training clips that are normalized pointmaps (0: RGB only, as the paper)")
    p.add_argument("--vae-window", type=int, default=5,
                   help="frames per VAE training clip (4k+1); longer windows teach the causal cache across chunks")
    p.add_argument("--vae-init", default="", help="start the VAE from this safetensors file (fine-tuning)")
    p.add_argument("--vae-train", choices=("all", "decoder"), default="all",
                   help="'decoder' fine-tunes only the decoder: latents stay the same, so DiT and One4D weights stay valid")
    p.add_argument("--base-steps", type=int, default=2000)
    p.add_argument("--base-lr", type=float, default=1e-3)
    p.add_argument("--one4d-steps", type=int, default=2000)
    p.add_argument("--one4d-lr", type=float, default=1e-3)
    p.add_argument("--one4d-init", default="", help="continue One4D training from this weight file")
    p.add_argument("--seed", type=int, default=4, help="seed of the One4D stage's batches and noise")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="one4d: also write one4d.safetensors every N steps (0: only at the end)")
    p.add_argument("--ablation-steps", type=int, default=1000)
    p.add_argument("--ablation-scenes", type=int, default=4)
    p.add_argument("--eval-steps", type=int, default=30)
    p.set_defaults(handler=run_stages)
