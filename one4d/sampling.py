"""Flow-matching sampling of RGB and pointmap latents with diffusers' schedulers.

Convention (Wan / diffusers): ``x_t = (1 - s) x0 + s * noise`` with ``s`` the sigma in [0, 1], the model
predicts the velocity ``noise - x0`` and is fed ``timestep = 1000 * s``. The paper writes the same flow
with ``t = 1 - s`` and the opposite velocity sign. Both modalities share the timestep and are stepped by
one scheduler as one tensor; their noises are independent. Classifier-free guidance is on the text only:
the conditioning frames (mask and latents) are kept in both passes, and cond/uncond ride in one batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

from .defaults import SCHEDULERS, WAN_FUN_14B, ModelDefaults
from .dlc import One4DModel
from .errors import One4DInputError, One4DInterrupted
from .progress import cancelled
from .request import check_sampling
from .umc import Conditioning


@dataclass
class SamplerSettings:
    """How to sample; the field defaults are the Wan2.1-Fun 14B kind's (:mod:`one4d.defaults`)."""

    steps: int = WAN_FUN_14B.steps
    guidance: float = WAN_FUN_14B.guidance
    shift: float = WAN_FUN_14B.shift
    scheduler: str = WAN_FUN_14B.scheduler
    seed: int = 0
    keep_observed: bool = True  # latent frames whose pixel frames were all given follow the given ones (below)

    @classmethod
    def for_kind(cls, defaults: ModelDefaults, seed: int = 0) -> "SamplerSettings":
        """The declared defaults of a model kind."""
        return cls(defaults.steps, defaults.guidance, defaults.shift, defaults.scheduler, seed)


StepCallback = Callable[[int, int, torch.Tensor], None]  # (step done, total, x0 estimate of RGB latents)


def make_scheduler(name: str, shift: float):
    """A diffusers flow-matching scheduler by name."""
    if name == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    if name == "unipc":
        return UniPCMultistepScheduler(
            num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift
        )
    raise One4DInputError(f"scheduler '{name}' is unknown; choose one of {', '.join(SCHEDULERS)}.")


def initial_noise(channels: int, latent_shape: tuple[int, int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent, seeded noise for the RGB and XYZ latents (CPU generator: same on every device)."""
    gen = torch.Generator("cpu").manual_seed(int(seed))
    shape = (1, channels, *latent_shape)
    return torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)


def observed_latent_frames(cond: Conditioning) -> torch.Tensor | None:
    """Latent frames all of whose pixel frames were given (the mask is 1 on every channel), or None.

    Decision (the paper leaves it open): after every step, these RGB latent frames are set to the
    conditioning latents (:attr:`~one4d.umc.Conditioning.pinned_latents`: the image of image-to-4D refined for the
    decoder, where the model kind refines) noised to the next sigma with the initial noise, as latent inpainting does; the last
    step leaves them equal to those latents, so the given frames come back at the VAE's
    round-trip quality and the rest of the clip is generated around them. In image mode that is latent
    frame 0 (the causal VAE encodes frame 0 alone); in video mode every frame."""
    if cond.mask is None or cond.cond_latents is None:
        return None
    known = cond.mask[0].amin(dim=0).flatten(1).amin(dim=1) > 0.5  # [T]
    return known if bool(known.any()) else None


def noised(x0: torch.Tensor, noise: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x_sigma = (1 - sigma) x0 + sigma noise`` (the flow's forward process)."""
    return (1 - sigma) * x0 + sigma * noise


def sample(
    model: One4DModel,
    cond: Conditioning,
    settings: SamplerSettings,
    callback: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    extras: list[tuple[str, float]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoise RGB and XYZ latents jointly; returns ``(rgb_latents, xyz_latents)`` as float32 ``[1, C, T, h, w]``."""
    check_sampling(settings.steps, settings.guidance, settings.shift, settings.scheduler)
    lat = cond.latent_shape
    param = next(p for p in model.dit.parameters() if p.is_floating_point())
    device = param.device
    dtype = param.dtype if param.dtype in (torch.float32, torch.float16, torch.bfloat16) else torch.bfloat16
    rgb, xyz = initial_noise(cond.geometry.channels, lat, settings.seed)
    x = torch.cat([rgb, xyz]).to(device)
    sched = make_scheduler(settings.scheduler, settings.shift)
    sched.set_timesteps(settings.steps, device=device)
    keep = observed_latent_frames(cond) if settings.keep_observed else None
    pinned = cond.pinned_latents if cond.pinned_latents is not None else cond.cond_latents
    guided = settings.guidance != 1.0
    ctx = cond.context
    if guided:
        neg = cond.negative_context if cond.negative_context is not None else torch.zeros_like(cond.context)
        ctx = torch.cat([cond.context, neg])
    n = ctx.shape[0]
    rep = lambda t: None if t is None else t.to(device, dtype).expand(n, *t.shape[1:])  # noqa: E731
    mask, cond_lat, clip = rep(cond.mask), rep(cond.cond_latents), rep(cond.clip_context)
    ctx = ctx.to(device, dtype)
    total = len(sched.timesteps)
    stop = should_stop or cancelled  # the caller's check, else the installed progress hook's (one4d.progress)
    for i, t in enumerate(sched.timesteps):
        if stop():
            raise One4DInterrupted(f"sampling stopped by the user after {i} of {total} steps")
        inp = x.to(dtype)
        rgb_in = inp[:1].expand(n, *inp.shape[1:])
        xyz_in = inp[1:].expand(n, *inp.shape[1:])
        with torch.no_grad():
            v_rgb, v_xyz = model(rgb_in, xyz_in, t.expand(n).to(device), ctx, mask, cond_lat, clip, extras=extras)
        v_rgb, v_xyz = v_rgb.float(), v_xyz.float()
        if guided:
            v_rgb = v_rgb[1:] + settings.guidance * (v_rgb[:1] - v_rgb[1:])
            v_xyz = v_xyz[1:] + settings.guidance * (v_xyz[:1] - v_xyz[1:])
        v = torch.cat([v_rgb, v_xyz])
        sigma = float(t) / 1000.0
        x = sched.step(v, t, x, return_dict=False)[0]
        if keep is not None:
            x[:1, :, keep] = noised(pinned[:, :, keep].to(device), rgb[:, :, keep].to(device), float(sched.sigmas[i + 1]))
        if stop():  # before the callback: a progress bar that raises on Cancel would hide how far sampling got
            raise One4DInterrupted(f"sampling stopped by the user after {i + 1} of {total} steps")
        if callback is not None:
            callback(i + 1, total, (x[:1] if i + 1 == total else (inp[:1].float() - sigma * v[:1])).cpu())
    return x[:1].float(), x[1:].float()
