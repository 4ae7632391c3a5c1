"""``one4d train``: the embedded model's training recipe, stage by stage (:mod:`one4d.training.stages`).

It trains the embedded-size model only (17 x 64 x 64 procedural clips, hash text encoder); its ``--work``
folder becomes a model folder that ``one4d run``, ``one4d eval`` and the nodes load.
"""
from __future__ import annotations

import argparse

from ..training.stages import STAGES, run_stages


def add_parser(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("stage", choices=(*STAGES, "ablation", "all"), help="the stage to run; 'all' runs data, vae, encode, base, one4d")
    p.add_argument("--work", default="runs/embedded", help="folder for data, latents, logs and weights (becomes a model folder)")
    p.add_argument("--clips", type=int, default=400, help="data: procedural training clips to render")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, with bf16 autocast), cpu or cuda")
    p.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto: bf16 autocast on CUDA, fp32 on CPU; bf16 also on CPU (about 1.4x faster VAE steps on a CPU with AVX-512 BF16)")
    p.add_argument("--time-limit", type=float, default=0.0,
                   help="minutes: stop after the step in progress once reached, writing a checkpoint; run again to resume")
    p.add_argument("--batch", type=int, default=16, help="base, one4d, ablation: clips per training step")
    p.add_argument("--vae-steps", type=int, default=600, help="vae: training steps")
    p.add_argument("--vae-batch", type=int, default=4, help="vae: clips per step")
    p.add_argument("--vae-lr", type=float, default=2e-3, help="vae: peak learning rate (cosine schedule)")
    p.add_argument("--vae-kl", type=float, default=1e-4, help="vae: weight of the KL term")
    p.add_argument("--vae-clip", type=float, default=0.0,
                   help="vae: clip the gradient norm to this (0: no clipping; the v2 recipe uses 1.0 at lr 1e-3)")
    p.add_argument("--vae-pointmap-share", type=float, default=0.0,
                   help="vae: fraction of training clips that are normalized pointmaps (0: RGB only, as the paper)")
    p.add_argument("--vae-window", type=int, default=5,
                   help="vae: frames per training clip (4k+1); longer windows teach the causal cache across chunks")
    p.add_argument("--vae-photo-share", type=float, default=0.0,
                   help="vae: fraction of training clips that are pseudo-videos of natural photos (0: none)")
    p.add_argument("--vae-photos", default="skimage",
                   help="vae: folder of photos, or 'skimage' (scikit-image's samples, four held out for evaluation)")
    p.add_argument("--vae-crop", type=int, default=0,
                   help="vae: train on random square crops of this many pixels (a multiple of the VAE stride; 0: whole frames)")
    p.add_argument("--vae-init", default="", help="vae: start from this safetensors file (fine-tuning)")
    p.add_argument("--vae-arch", choices=("residual", "plain"), default="residual",
                   help="vae: architecture of a new VAE (without --vae-init): 'residual' (Wan2.2-style shortcuts; learns "
                        "faster) or 'plain' (the shipped v2 VAE's)")
    p.add_argument("--vae-z-dim", type=int, default=0,
                   help="vae: widen the --vae-init VAE's latent to this many channels, keeping what it reconstructs "
                        "(new channels start unused; 0: keep its channels)")
    p.add_argument("--vae-train", choices=("all", "decoder"), default="all",
                   help="vae: 'decoder' fine-tunes only the decoder: latents stay the same, so DiT and One4D weights stay valid")
    p.add_argument("--vae-anchor", type=float, default=0.0,
                   help="vae: with --vae-init, fine-tune the encoder too but keep procedural clips' latents near the "
                        "init VAE's (this weight times their mean squared drift in normalized latent units; the init's "
                        "latent statistics are kept), so DiT and One4D weights trained on it stay usable; 0: off")
    p.add_argument("--base-steps", type=int, default=2000, help="base: training steps of the base DiT")
    p.add_argument("--base-lr", type=float, default=1e-3, help="base: peak learning rate")
    p.add_argument("--base-init", default="", help="base: start from this DiT file (same recipe) instead of random weights")
    p.add_argument("--base-init-vae", default="",
                   help="base: the VAE the --base-init DiT was trained on; its input and output layers are then carried "
                   "into this work folder's latent space by a fitted rotation (one4d.training.latent_transplant)")
    p.add_argument("--one4d-steps", type=int, default=2000, help="one4d: training steps of the adapters and links")
    p.add_argument("--one4d-lr", type=float, default=1e-3, help="one4d, ablation: peak learning rate")
    p.add_argument("--shard-size", type=int, default=64, help="encode: clips per latent-cache shard")
    p.add_argument("--data", action="append", default=[],
                   help="encode: a real 4D dataset as KIND:ROOT (folder, pointodyssey, tartanair, vkitti2; repeatable; "
                        "docs/data.md) instead of the procedural clips of the data stage")
    p.add_argument("--clips-per-sequence", type=int, default=4, help="encode with --data: clips cut from each sequence")
    p.add_argument("--clip-frames", type=int, default=0, help="encode with --data: frames per clip (default: the model's, 81 Wan)")
    p.add_argument("--clip-height", type=int, default=0, help="encode with --data: clip height (default: the model's)")
    p.add_argument("--clip-width", type=int, default=0, help="encode with --data: clip width (default: the model's)")
    p.add_argument("--frame-stride", type=int, default=1, help="encode with --data: take every N-th frame of a sequence")
    p.add_argument("--model", default="",
                   help="encode, one4d: build on this model folder (e.g. one naming real Wan2.1 files, docs/model.md) "
                        "instead of the embedded recipe's own VAE and base DiT in --work")
    p.add_argument("--rank", type=int, default=0, help="one4d: LoRA rank of both branches (default 16 embedded, 64 with --model)")
    p.add_argument("--alpha", type=float, default=None, help="one4d: LoRA alpha (default: the rank)")
    p.add_argument("--links", type=int, default=0, help="one4d: number of control links, evenly spaced (default 5)")
    p.add_argument("--task-mix", default="",
                   help="one4d: task shares as NAME=SHARE,... over image, sparse, video, text (default: the paper's 0.35 / 0.30 / "
                        "0.35 scaled by 0.9, plus text 0.10; shares are normalized)")
    p.add_argument("--xyz-weight", type=float, default=1.0, help="one4d: weight of the pointmap loss against the RGB loss")
    p.add_argument("--sigma-shift", type=float, default=3.0,
                   help="one4d: shift of the training noise levels (uniform, warped like the sampler's shift; higher: noisier)")
    p.add_argument("--text-dropout", type=float, default=0.1,
                   help="one4d: probability of training a clip without its text (for classifier-free guidance)")
    p.add_argument("--accumulate", type=int, default=1, help="one4d: micro-batches per optimizer step (gradient accumulation)")
    p.add_argument("--validate-scenes", type=int, default=4,
                   help="one4d: procedural validation scenes (seeds 1,000,100 on, not the evaluation suite's) of the coupling "
                        "report and, without --validate-data, of the metrics, run with every checkpoint (0: none)")
    p.add_argument("--validate-data", action="append", default=[], metavar="KIND:ROOT",
                   help="one4d: held-out real sequences (same kinds as --data; not the training ones) whose clips the "
                        "validation metrics run on: one clip per sequence from its first frame, center-cropped to the training clip (repeatable)")
    p.add_argument("--validate-clips", type=int, default=4, help="one4d: clips of --validate-data to validate on (one per sequence)")
    p.add_argument("--validate-steps", type=int, default=20,
                   help="one4d: sampling steps of the validation metrics (depth AbsRel, delta<1.25, ATE, RPE, RGB PSNR) "
                        "with every checkpoint (0: no metrics, only the coupling report)")
    p.add_argument("--validate-modes", default="single,full",
                   help="one4d: comma-separated modes of the validation metrics: full, sparse25, single, text")
    p.add_argument("--vae-validate-scenes", type=int, default=0,
                   help="vae: held-out validation scenes (seeds 1,000,100 on) whose round trip is measured with every checkpoint")
    p.add_argument("--grad-checkpointing", action="store_true",
                   help="one4d: recompute each DiT block in the backward pass (less activation memory for one more forward pass per block)")
    p.add_argument("--base-storage", choices=("compute", "fp8"), default="compute",
                   help="one4d: keep the frozen base in its compute dtype (the model folder's, bf16 for Wan) or in fp8 e4m3fn, "
                        "up-cast layer by layer (half the base's memory; pair it with --grad-checkpointing, else the "
                        "up-cast weights are kept for the backward pass)")
    p.add_argument("--one4d-init", default="", help="one4d: continue from this One4D weight file; with a larger --rank or "
                   "--links it is grown into them, computing what it computed (one4d.training.adapter_growth)")
    p.add_argument("--seed", type=int, default=None,
                   help="vae, encode, one4d: seed of the batches and noise (default: the stage's own, vae 0, others 4); "
                   "a continuation with a new seed draws batches the earlier run did not")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="write the resumable checkpoint (<stage>.state.pt) and the weights every N steps (0: only at the end)")
    p.add_argument("--ablation-steps", type=int, default=1000, help="ablation: training steps of each variant")
    p.add_argument("--ablation-scenes", type=int, default=4, help="ablation: held-out scenes each variant is evaluated on")
    p.add_argument("--eval-steps", type=int, default=30, help="ablation: sampling steps of the evaluation")
    p.set_defaults(handler=run_stages)
