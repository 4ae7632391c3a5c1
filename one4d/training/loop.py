"""The rectified-flow training of One4D: one loss on both modalities, run by the shared trainer.

Decisions the paper leaves open (defaults; ``one4d train one4d --sigma-shift/--xyz-weight/--text-dropout``
change them): sigma is drawn uniformly and warped with the same shift as sampling (3.0) so training sees the
noise levels inference spends its steps on; the XYZ loss has weight 1; the text is dropped (zero context) with
probability 0.1 so classifier-free guidance works. The task mix (which frames each clip observes) is in
:mod:`one4d.training.tasks`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import PartialState

from ..dlc import One4DModel
from .tasks import default_task_mix
from .trainer import Schedule, Trainer


@dataclass
class StepSettings:
    """Loss settings of a training step (module docstring)."""

    shift: float = 3.0
    xyz_weight: float = 1.0
    text_dropout: float = 0.1

    def changed(self) -> dict[str, float]:
        """The settings that differ from the defaults (what a resumed run must share beyond the defaults)."""
        default = StepSettings()
        return {k: v for k, v in vars(self).items() if getattr(default, k) != v}


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
    shard: slice = slice(None),
) -> tuple[torch.Tensor, dict[str, float]]:
    """Rectified-flow MSE on both modalities for a batch of clean latents; returns ``(loss, parts)``.

    Same sigma and text for both modalities, independent noise (the paper's sections 5 and 6). The inputs
    are a global batch; the noise is drawn for all of it and the loss computed on ``shard`` only, so that
    processes of a distributed run, each with its shard, add up to one process with the whole batch.
    """
    b = rgb0.shape[0]
    u = torch.rand(b, generator=generator)
    sigma = shifted_sigmas(u, settings.shift)[shard].to(rgb0.device)
    eps_r = torch.randn(rgb0.shape, generator=generator)[shard].to(rgb0.device)
    eps_x = torch.randn(xyz0.shape, generator=generator)[shard].to(rgb0.device)
    keep = (torch.rand(b, generator=generator) >= settings.text_dropout)[shard].to(context.dtype)
    pick = lambda t: None if t is None else t[shard]  # noqa: E731
    rgb0, xyz0, mask, cond, context, clip_context = rgb0[shard], xyz0[shard], pick(mask), pick(cond), context[shard], pick(clip_context)
    s = sigma.view(-1, 1, 1, 1, 1)
    rgb_t = (1 - s) * rgb0 + s * eps_r
    xyz_t = (1 - s) * xyz0 + s * eps_x
    v_rgb, v_xyz = model(rgb_t, xyz_t, sigma * 1000.0, context * keep.view(-1, 1, 1).to(context.device), mask, cond, clip_context)
    loss_rgb = F.mse_loss(v_rgb.float(), (eps_r - rgb0).float())
    loss_xyz = F.mse_loss(v_xyz.float(), (eps_x - xyz0).float())
    loss = loss_rgb + settings.xyz_weight * loss_xyz
    return loss, {"loss": loss.item(), "rgb": loss_rgb.item(), "xyz": loss_xyz.item()}


class BatchSource(Protocol):
    rng: np.random.Generator  # its draws; saved in checkpoints so that a resumed run draws the same batches
    mix: dict[str, float]  # the task shares its draws follow (one4d.training.tasks)

    def draw(self, batch: int) -> tuple[torch.Tensor, ...]:
        """Clean RGB and XYZ latents, UMC masks, conditioning latents and text contexts of ``batch`` clips."""


def fit_two_modalities(model, batches: BatchSource, schedule: Schedule, batch: int, work: Path, tag: str, seed: int,
                       device: torch.device = torch.device("cpu"), on_checkpoint: Callable[[int], None] | None = None,
                       accumulate: int = 1, settings: StepSettings | None = None) -> bool:
    """Train a two-modality model's trainable parameters with the rectified-flow loss, resumably and on as
    many processes as launched (:class:`one4d.training.trainer.Trainer`; ``batch`` per process and
    micro-step); returns whether the schedule finished (not stopped by its time limit).
    ``on_checkpoint(step)`` writes the weights with every checkpoint; ``settings`` are the loss's (defaults:
    :class:`StepSettings`)."""
    gen = torch.Generator().manual_seed(seed)
    settings = settings or StepSettings()
    model.to(device).train()
    processes = PartialState(cpu=device.type == "cpu").num_processes
    trainer = Trainer(model, schedule, {"data": batches.rng, "noise": gen}, work, tag, device, accumulate,
                      {"global_batch": batch * processes, **settings.changed(),
                       **({"task_mix": batches.mix} if batches.mix != default_task_mix() else {})})

    def step(wrapped: torch.nn.Module) -> tuple[torch.Tensor, dict[str, float]]:
        rgb0, xyz0, mask, cond, ctx = (t.to(device) for t in batches.draw(batch * processes))
        return flow_matching_loss(wrapped, rgb0, xyz0, mask, cond, ctx, settings, gen, shard=trainer.shard(batch))

    def checkpoint(done: int) -> None:
        model.eval()
        on_checkpoint(done)
        model.train()

    finished = trainer.run(step, checkpoint if on_checkpoint is not None else None)
    model.eval()
    return finished
