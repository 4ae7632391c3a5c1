"""The rectified-flow training loop of One4D: one loss on both modalities, the lr schedule, the loop.

Decisions the paper leaves open: sigma is drawn uniformly and warped with the same shift as sampling
(default 3.0) so training sees the noise levels inference spends its steps on; the XYZ loss has weight 1;
the text is dropped (zero context) with probability 0.1 so classifier-free guidance works. The task mix
(which frames each clip observes) is in :mod:`one4d.training.tasks`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn.functional as F

from ..dlc import One4DModel


@dataclass
class StepSettings:
    """Loss settings of a training step (module docstring)."""

    shift: float = 3.0
    xyz_weight: float = 1.0
    text_dropout: float = 0.1


def cosine_lr(step: int, total: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def shifted_sigmas(u: torch.Tensor, shift: float) -> torch.Tensor:
    """Warp uniform samples the way flow-matching schedulers shift their sigmas."""
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_loss(
    model: One4DModel,
    rgb0: torch.Tensor,
    xyz0: torch.Tensor,
    mask: torch.Tensor | None,
    cond: torch.Tensor | None,
    context: torch.Tensor,
    settings: StepSettings,
    generator: torch.Generator,
    clip_context: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rectified-flow MSE on both modalities for a batch of clean latents; returns ``(loss, parts)``.

    Same sigma and text for both modalities, independent noise (the paper's sections 5 and 6).
    """
    b = rgb0.shape[0]
    u = torch.rand(b, generator=generator)
    sigma = shifted_sigmas(u, settings.shift).to(rgb0.device)
    s = sigma.view(b, 1, 1, 1, 1)
    eps_r = torch.randn(rgb0.shape, generator=generator).to(rgb0.device)
    eps_x = torch.randn(xyz0.shape, generator=generator).to(rgb0.device)
    rgb_t = (1 - s) * rgb0 + s * eps_r
    xyz_t = (1 - s) * xyz0 + s * eps_x
    keep = (torch.rand(b, generator=generator) >= settings.text_dropout).to(context.dtype).view(b, 1, 1)
    v_rgb, v_xyz = model(rgb_t, xyz_t, sigma * 1000.0, context * keep.to(context.device), mask, cond, clip_context)
    loss_rgb = F.mse_loss(v_rgb.float(), (eps_r - rgb0).float())
    loss_xyz = F.mse_loss(v_xyz.float(), (eps_x - xyz0).float())
    loss = loss_rgb + settings.xyz_weight * loss_xyz
    return loss, {"loss": loss.item(), "rgb": loss_rgb.item(), "xyz": loss_xyz.item()}


def log_values(work: Path, stage: str, step: int, **values: float) -> None:
    """Append one record to ``<work>/log.jsonl``."""
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps({"stage": stage, "step": step, "time": time.time(), **values}) + "\n")


class BatchSource(Protocol):
    def draw(self, batch: int) -> tuple[torch.Tensor, ...]:
        """Clean RGB and XYZ latents, UMC masks, conditioning latents and text contexts of ``batch`` clips."""


def fit_two_modalities(model, batches: BatchSource, steps: int, lr: float, batch: int, work: Path, tag: str, seed: int,
                       checkpoint: Callable[[int], None] | None = None, checkpoint_every: int = 0) -> float:
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
            log_values(work, tag, step, **parts)
        if checkpoint is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            model.eval()
            checkpoint(step + 1)
            model.train()
    model.eval()
    return time.time() - t0

