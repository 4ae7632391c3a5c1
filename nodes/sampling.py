"""One4D Sample and One4D Decode.

Sample denoises the RGB and pointmap latents jointly (one flow-matching loop, both branches in one batch),
reports every step on ComfyUI's progress bar with a latent preview of the clip's middle frame, and stops
within one step when the prompt is cancelled (nothing downstream runs, so no file is written). Decode
reports and checks for Cancel once per latent frame (the VAE decoder's hook, :mod:`one4d.progress`).

The latents leave as core LATENT dicts holding raw Wan-VAE latents (like KSampler's output), so core VAE
Decode with the Wan 2.1 VAE can also decode the RGB one; ``one4d`` in the dict carries what Decode needs.
"""
from __future__ import annotations

import logging
import time

import torch

from one4d.defaults import GUIDANCE_RANGE, SCHEDULERS, SHIFT_RANGE, STEPS_RANGE, WAN_FUN_14B
from one4d.errors import One4DInputError
from one4d.geometry import assemble_result
from one4d.request import check_sampling
from one4d.sampling import SamplerSettings, sample

from . import comfy_bridge as bridge
from .handle import One4DHandle
from .imaging import depth_to_image, to_image
from .values import COND, MODEL, POINTMAP, CondData, PointmapData, latent_meta

log = logging.getLogger("one4d")


def _stats(codec) -> tuple[torch.Tensor, torch.Tensor]:
    cfg = codec.vae.config
    mean = torch.tensor(cfg.latents_mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
    std = torch.tensor(cfg.latents_std, dtype=torch.float32).view(1, -1, 1, 1, 1)
    return mean, std


class One4DSample:
    DESCRIPTION = (
        "Generates the RGB video and the pointmap video together (flow matching with classifier-free guidance on the text). "
        "Shows progress and a preview; Cancel stops it within one step."
    )
    CATEGORY = "One4D/sampling"
    RETURN_TYPES = ("LATENT", "LATENT")
    RETURN_NAMES = ("rgb_latent", "pointmap_latent")
    OUTPUT_TOOLTIPS = (
        "RGB video latents (Wan VAE space; One4D Decode, or core VAE Decode with the Wan VAE, turns them into frames).",
        "Pointmap video latents (decode with One4D Decode).",
    )
    FUNCTION = "sample"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The One4D model (after One4D Apply Pointmap LoRA)."}),
                "conditioning": (COND, {"tooltip": "From One4D Build Conditioning."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "control_after_generate": True,
                                 "tooltip": "Seed of the initial noise (the same seed gives the same result on every device)."}),
                "steps": ("INT", {"default": WAN_FUN_14B.steps, "min": STEPS_RANGE[0], "max": STEPS_RANGE[1],
                                  "tooltip": "Denoising steps (the paper: 50 for Wan2.1-Fun; the embedded model: 30)."}),
                "guidance": ("FLOAT", {"default": WAN_FUN_14B.guidance, "min": GUIDANCE_RANGE[0], "max": GUIDANCE_RANGE[1],
                                       "step": 0.1, "round": 0.01,
                                       "tooltip": "Classifier-free guidance on the text (the paper: 6.0); 1.0 turns guidance off "
                                                  "(half the compute; the embedded model's default)."}),
                "shift": ("FLOAT", {"default": WAN_FUN_14B.shift, "min": SHIFT_RANGE[0], "max": SHIFT_RANGE[1], "step": 0.1,
                                    "round": 0.01, "tooltip": "Flow-matching timestep shift (Wan: 3.0 for 480p, 5.0 for 720p)."}),
                "scheduler": (list(SCHEDULERS), {"default": WAN_FUN_14B.scheduler,
                                                 "tooltip": "unipc (Wan's default, fewer steps) or euler."}),
            }
        }

    def sample(self, model: One4DHandle, conditioning: CondData, seed, steps, guidance, shift, scheduler):
        if not isinstance(conditioning, CondData):
            raise One4DInputError("conditioning must come from One4D Build Conditioning.")
        settings = SamplerSettings(steps=int(steps), guidance=float(guidance), shift=float(shift),
                                   scheduler=str(scheduler), seed=int(seed))
        check_sampling(settings.steps, settings.guidance, settings.shift, settings.scheduler)
        net = model.load_for_sampling(model.activation_bytes(conditioning.cond, settings.guidance != 1.0))
        progress = bridge.make_progress(settings.steps)  # its own bar: steps with a latent preview
        t0 = time.perf_counter()
        try:
            with bridge.library_hook(progress=False), model.cpu_threads():  # the sampler polls the hook every step
                rgb, xyz = sample(net, conditioning.cond, settings, callback=progress, extras=model.extras())
        finally:
            model.after_sampling()
        log.info("One4D: sampled %d steps in %.1f s (%s)", settings.steps, time.perf_counter() - t0, model.describe())
        mean, std = _stats(model.codec)
        out = []
        for modality, lat in (("rgb", rgb), ("pointmap", xyz)):
            raw = lat.detach().float().cpu() * std + mean
            out.append({"samples": raw, "one4d": latent_meta(modality, conditioning.cond)})
        return tuple(out)


def _normalized(latent: dict, codec, name: str) -> tuple[torch.Tensor, dict]:
    if not isinstance(latent, dict) or "samples" not in latent:
        raise One4DInputError(f"'{name}' must be a LATENT.")
    samples = latent["samples"]
    if samples.ndim != 5 or samples.shape[1] != 16:
        raise One4DInputError(f"'{name}' has shape {tuple(samples.shape)}; One4D Decode needs Wan video latents [B, 16, T, h, w].")
    mean, std = _stats(codec)
    return (samples[:1].float() - mean) / std, latent.get("one4d", {})


class One4DDecode:
    DESCRIPTION = (
        "Decodes the RGB and pointmap latents with the VAE: the RGB frames as an IMAGE batch, the pointmap video as POINTMAP "
        "(in the model's normalized space, no metric scale), and a depth preview as IMAGE for core save/preview nodes."
    )
    CATEGORY = "One4D/decode"
    RETURN_TYPES = ("IMAGE", POINTMAP, "IMAGE")
    RETURN_NAMES = ("images", "pointmap", "depth")
    OUTPUT_TOOLTIPS = (
        "The generated RGB frames [F, H, W, 3].",
        "The pointmap video with the RGB colors; connect One4D Cameras for cameras and per-frame depth, or save/preview it.",
        "Depth along the first camera's axis as grey images (near = white); One4D Cameras gives per-frame camera depth.",
    )
    FUNCTION = "decode"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The One4D model (its VAE decodes both modalities)."}),
                "rgb_latent": ("LATENT", {"tooltip": "rgb_latent from One4D Sample."}),
                "pointmap_latent": ("LATENT", {"tooltip": "pointmap_latent from One4D Sample."}),
            }
        }

    def decode(self, model: One4DHandle, rgb_latent, pointmap_latent):
        meta = rgb_latent.get("one4d", {}) if isinstance(rgb_latent, dict) else {}
        codec = model.load_vae(meta.get("num_frames", 0), meta.get("height", 0), meta.get("width", 0))
        rgb, meta = _normalized(rgb_latent, codec, "rgb_latent")
        xyz, _ = _normalized(pointmap_latent, codec, "pointmap_latent")
        if rgb.shape != xyz.shape:
            raise One4DInputError(f"rgb_latent {tuple(rgb.shape)} and pointmap_latent {tuple(xyz.shape)} differ; connect both outputs of the same One4D Sample.")
        with bridge.library_hook(), model.cpu_threads():
            frames, points = codec.decode_pair(rgb, xyz)
        result = assemble_result(frames, points, list(meta.get("indices", [])), recover=False)
        pointmap = PointmapData(result.points, result.rgb, result.valid, list(result.indices), space="normalized")
        return (to_image(result.rgb), pointmap, depth_to_image(result.depth, result.valid))
