"""One rectified-flow training step for One4D, and the task mix over observed-frame counts.

Decisions the paper leaves open: sigma is drawn uniformly and warped with the same shift as sampling
(default 3.0) so training sees the noise levels inference spends its steps on; the XYZ loss has weight 1;
the text is dropped (zero context) with probability 0.1 so classifier-free guidance works; the task mix is
the paper's 0.35 / 0.30 / 0.35 (single image / sparse / full video) scaled to make room for a 0.10
text-only share; sparse tasks keep first, last and evenly spaced frames at a ratio drawn log-uniformly in
[0.03, 0.5] (the paper's evaluated range).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..dlc import One4DModel
from ..umc import sparse_indices

PAPER_MIX = {"image": 0.35, "sparse": 0.30, "video": 0.35}


def default_task_mix(text_share: float = 0.10) -> dict[str, float]:
    """The paper's mix scaled by ``1 - text_share``, plus a text-only share."""
    mix = {k: v * (1 - text_share) for k, v in PAPER_MIX.items()}
    mix["text"] = text_share
    return mix


def draw_task(rng: np.random.Generator, mix: dict[str, float]) -> str:
    """Draw a task name (text, image, sparse, video) with the probabilities of ``mix``."""
    names = sorted(mix)
    probs = np.array([mix[n] for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=probs / probs.sum()))]


def sample_observed(rng: np.random.Generator, num_frames: int, mix: dict[str, float]) -> tuple[str, list[int]]:
    """Draw a task from ``mix`` and the frame indices it observes."""
    task = draw_task(rng, mix)
    if task == "text":
        return task, []
    if task == "image":
        return task, [0]
    if task == "video":
        return task, list(range(num_frames))
    ratio = math.exp(rng.uniform(math.log(0.03), math.log(0.5)))
    return task, sparse_indices(num_frames, ratio)


@dataclass
class StepSettings:
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

    Same sigma and text for both modalities, independent noise (PAPER.md section 5/6).
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
