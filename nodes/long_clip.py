"""One4D Long Clip: conditioning, sampling and decoding of a clip longer than the model window, window by window.

The clip is cut into overlapping windows of the model's length (:mod:`one4d.long_video`); each window
builds its UMC conditioning (the user's frames inside it; in generation also the previous window's last
generated frames), samples and decodes, and the pointmaps are stitched into the first window's frame. The
progress bar covers every step of every window; Cancel stops within one step, and between windows; the
model is loaded through ComfyUI's model management for each window, so only one window's activations are
in memory. Frames of the input batch that are not used (beyond ``length``, or the remainder when a clip
within one window must have 4k+1 frames) are named in the node's UI text and the log.

Frame selection (``frame_indices``): ``all`` reconstructs the whole IMAGE batch (``length`` 0) or its first
``length`` frames; ``first``, ``0,40,120`` or ``even:N`` place the images at those frames of a clip of
``length`` frames (generation). Output: RGB frames, the stitched pointmap (normalized space, for One4D
Cameras, which recovers the cameras of the whole clip at once) and a depth preview.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
import torch

from one4d.defaults import MAX_FRAMES, WAN_FUN_14B
from one4d.errors import One4DInputError
from one4d.long_video import WindowRunner, WindowSpec, plan_long_clip, run_long_clip, window_settings
from one4d.request import check_sampling, check_video
from one4d.progress import check_cancelled
from one4d.sampling import SamplerSettings, sample
from one4d.text import TEXT_LEN, text_contexts
from one4d.umc import build_conditioning, parse_indices

from . import comfy_bridge as bridge
from .conditioning import One4DBuildConditioning, clip_tokens, conditioning_tokens
from .sampling import One4DSample
from .handle import One4DHandle
from .imaging import depth_to_image, fit_frames, to_image
from .values import MODEL, POINTMAP, PointmapData

log = logging.getLogger("one4d")


def long_selection(images: Optional[torch.Tensor], spec: str, length: int, window: int) -> tuple[Optional[torch.Tensor], list[int], int, list[str]]:
    """The observed images, their clip indices, the clip length, and warnings naming unused input frames."""
    text = (spec or "").strip().lower()
    n = 0 if images is None else int(images.shape[0])
    if text == "all":
        if images is None:
            raise One4DInputError("frame_indices 'all' reconstructs the connected images; connect an IMAGE batch.")
        total = min(n, length) if length else n
        if total <= window and (total - 1) % 4:
            total = (total - 1) // 4 * 4 + 1
        warnings = []
        if total < n:
            why = f"length {length}" if length and length < n else "a clip within one window has 4k+1 frames"
            warnings.append(f"{n - total} of the {n} input frames are not used ({why}): frames {total}-{n - 1}.")
        return images[:total], list(range(total)), total, warnings
    if not length:
        raise One4DInputError(f"frame_indices '{spec}' generates a clip: set length to the number of frames to make (e.g. 161).")
    if images is None:
        if parse_indices(spec, length):
            raise One4DInputError(f"frame_indices '{spec}' selects frames but no images are connected; connect images or use 'none'.")
        return None, [], length, []
    indices = parse_indices(spec, length)
    if n != len(indices):
        raise One4DInputError(f"{n} image(s) were given for {len(indices)} frame index(es) '{spec}'; give one image per index.")
    return images, indices, length, []


class One4DLongClip:
    DESCRIPTION = (
        "Generates or reconstructs a clip longer than the model window (e.g. 300 frames of a video), window by window with "
        "overlapping windows stitched into one pointmap video. Connect its pointmap to One4D Cameras."
    )
    CATEGORY = "One4D/sampling"
    RETURN_TYPES = ("IMAGE", POINTMAP, "IMAGE")
    RETURN_NAMES = ("images", "pointmap", "depth")
    OUTPUT_TOOLTIPS = (
        "The RGB frames of the whole clip [F, H, W, 3].",
        "The stitched pointmap video in the first window's normalized frame; connect One4D Cameras.",
        "Depth along the first camera's axis as grey images (near = white).",
    )
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        cond = One4DBuildConditioning.INPUT_TYPES()
        sampler = One4DSample.INPUT_TYPES()["required"]  # window k samples with seed + k
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The One4D model (after One4D Apply Pointmap LoRA)."}),
                "width": cond["required"]["width"],
                "height": cond["required"]["height"],
                "length": ("INT", {"default": 0, "min": 0, "max": 100_000,
                                   "tooltip": "Frames of the clip. 0 with 'all': every frame of the IMAGE batch. For generation: "
                                              "the number of frames to make."}),
                "frame_indices": ("STRING", {"default": "all",
                                             "tooltip": "all (reconstruct the images), first (image to a long clip), a list like "
                                                        "0,80,160, even:N, or none (text)."}),
                "window": ("INT", {"default": WAN_FUN_14B.frames, "min": 5, "max": MAX_FRAMES, "step": 4,
                                   "tooltip": "Frames per model window, 4k+1 (81 for Wan, 17 for the embedded model)."}),
                "overlap": ("INT", {"default": WAN_FUN_14B.overlap, "min": 1, "max": MAX_FRAMES - 1,
                                    "tooltip": "Frames shared by consecutive windows (16 for Wan, 8 for the embedded model)."}),
                **{name: sampler[name] for name in ("seed", "steps", "guidance", "shift", "scheduler")},
                "prompt": cond["required"]["prompt"],
                "negative_prompt": cond["required"]["negative_prompt"],
            },
            "optional": dict(cond["optional"]),
        }

    def run(self, model: One4DHandle, width, height, length, frame_indices, window, overlap, seed, steps, guidance, shift,
            scheduler, prompt="", negative_prompt="", images=None, positive=None, negative=None, clip_vision_output=None):
        height, width, window = int(height), int(width), int(window)
        settings = SamplerSettings(int(steps), float(guidance), float(shift), str(scheduler), int(seed))
        check_sampling(settings.steps, settings.guidance, settings.shift, settings.scheduler)
        check_video(window, height, width, geometry=model.geometry)
        if images is not None and (images.ndim != 4 or images.shape[-1] != 3):
            raise One4DInputError(f"images must be an IMAGE batch [N, H, W, 3], got shape {tuple(images.shape)}.")
        frames, indices, total, warnings = long_selection(images, frame_indices, int(length), window)
        if total <= window:
            check_video(total, height, width, indices, model.geometry)
        specs = plan_long_clip(total, window, int(overlap), indices)
        if frames is not None:
            frames = fit_frames(frames, height, width)
        context, negative_context = conditioning_tokens(model, positive, negative)
        context, negative_context = text_contexts(model.text_encoder, prompt or "", negative_prompt or "", context, negative_context)
        clip = clip_tokens(model, clip_vision_output)
        for warning in warnings:
            log.warning("One4D Long Clip: %s", warning)
        runner = _window_runner(model, height, width, settings, specs, context, negative_context, clip)
        observed = None if frames is None else frames.numpy()
        with bridge.library_hook(progress=False):  # Cancel reaches sampling, decoding and stitching; one bar
            result = run_long_clip(runner, specs, total, observed, indices, recover=False)
        pointmap = PointmapData(result.points, result.rgb, result.valid, list(result.indices), space="normalized")
        log.info("One4D: long clip of %d frames in %d windows (%s)", total, len(specs), model.describe())
        text = [f"{total} frames in {len(specs)} windows of {window} (overlap {overlap})", *warnings]
        return {"ui": {"text": text}, "result": (to_image(result.rgb), pointmap, depth_to_image(result.depth, result.valid))}


def _window_runner(model: One4DHandle, height: int, width: int, settings: SamplerSettings, specs: list[WindowSpec],
                   context: torch.Tensor, negative_context: Optional[torch.Tensor], clip: Optional[torch.Tensor]) -> WindowRunner:
    """Condition, sample and decode one window through ComfyUI's model management (module docstring)."""
    total_steps = settings.steps * len(specs)
    progress = bridge.make_progress(total_steps)
    text_length = int(getattr(model.text_encoder, "length", TEXT_LEN))

    def run(spec: WindowSpec, observed: Optional[np.ndarray], indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        check_cancelled(f"before window {spec.index + 1} of {len(specs)}")
        codec = model.load_vae(spec.length, height, width)
        frames = None if observed is None else torch.from_numpy(observed)
        with model.cpu_threads():
            cond = build_conditioning(codec, model.variant, spec.length, height, width, frames, indices, context,
                                      negative_context, text_length, clip, model.refine_steps)
        window = window_settings(settings, spec)
        net = model.load_for_sampling(model.activation_bytes(cond, window.guidance != 1.0))
        offset = spec.index * settings.steps
        try:
            with model.cpu_threads():
                rgb_lat, xyz_lat = sample(net, cond, window, callback=lambda step, _n, x0: progress(offset + step, total_steps, x0),
                                          extras=model.extras())
        finally:
            model.after_sampling()
        codec = model.load_vae(spec.length, height, width)
        with model.cpu_threads():
            return codec.decode_pair(rgb_lat, xyz_lat)

    return run
