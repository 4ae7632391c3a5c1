"""One4D Build Conditioning: frames + which frames they are + text -> the UMC conditioning (``ONE4D_COND``).

Frame selection (``frame_indices``), decided here because ComfyUI users feed both single images and whole
videos into one IMAGE socket:

- ``none``: text-to-4D; no images may be connected.
- ``first``: image-to-4D; the first image of the batch is frame 0.
- ``all``: reconstruction; the batch must have at least ``length`` frames and the first ``length`` are used.
- ``0,20,40,80`` or ``even:N``: sparse frames. Either one image per index (in the order written), or a whole
  video of at least ``length`` frames from which the listed frames are taken.

Images of another aspect ratio are centre-cropped to it (``fit`` crop, as core's Wan nodes do) or padded with
the unobserved-frame gray (``fit`` pad), then resized to width x height; the log says what was cut or padded.
Text: core CONDITIONING from CLIPTextEncode with the Wan umT5 encoder (``[1, L, 4096]``, zero-padded to 512
tokens as original Wan does); the embedded model has its own text encoder, so there the ``prompt`` /
``negative_prompt`` fields can be used instead. A CLIP_VISION_OUTPUT (core CLIPVisionEncode with
clip_vision_h) feeds the image cross-attention of backbones that have it (Wan2.1-Fun 14B InP, I2V).
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import torch

from one4d.defaults import MAX_FRAMES, MAX_SIDE, WAN_FUN_14B
from one4d.data.media import FITS, fit_note
from one4d.errors import One4DInputError
from one4d.request import check_video
from one4d.text import TEXT_LEN, text_contexts
from one4d.umc import build_conditioning, mode_of, parse_indices

from .handle import One4DHandle
from .imaging import fit_frames
from .values import COND, MODEL, CondData

log = logging.getLogger("one4d")
CLIP_TOKENS = 257  # clip_vision_h penultimate features: CLS + 16 x 16 patches


def select_frames(images: Optional[torch.Tensor], spec: str, length: int) -> tuple[Optional[torch.Tensor], list[int]]:
    """Pick the conditioning frames and their indices (see module docstring)."""
    text = (spec or "").strip().lower()
    if images is None:
        indices = parse_indices(spec, length)
        if indices:
            raise One4DInputError(
                f"frame_indices '{spec}' selects {len(indices)} frame(s) but no images are connected; connect images, "
                "or set frame_indices to 'none' for text-to-4D."
            )
        return None, []
    if images.ndim != 4 or images.shape[-1] != 3:
        raise One4DInputError(f"images must be an IMAGE batch [N, H, W, 3], got shape {tuple(images.shape)}.")
    n = int(images.shape[0])
    if text in ("", "none", "text"):
        raise One4DInputError(
            "images are connected but frame_indices is 'none'; say which frames they are ('first', 'all', '0,20,40' or "
            "'even:5'), or disconnect the images for text-to-4D."
        )
    if text == "first":
        if n > 1:
            log.info("One4D: frame_indices 'first' uses the first of %d images", n)
        return images[:1], [0]
    if text == "all":
        if n < length:
            raise One4DInputError(
                f"frame_indices 'all' needs {length} images (the video length) but {n} were given; give more frames, lower "
                "length, or list the frames you have (e.g. '0,8,16')."
            )
        return images[:length], list(range(length))
    indices = parse_indices(spec, length)
    if n == len(indices):
        return images, indices
    if n >= length:
        return images[indices], indices
    raise One4DInputError(
        f"{n} image(s) were given for {len(indices)} frame index(es) '{spec}'; give one image per index (in the order "
        f"written), or a whole video of at least {length} frames to take them from."
    )


def _context(cond: Any, name: str) -> torch.Tensor:
    """The text tokens of a core CONDITIONING (``[[tensor [1, L, D], {...}], ...]``)."""
    try:
        tensor = cond[0][0]
    except (TypeError, IndexError, KeyError):
        tensor = None
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (2, 3):
        raise One4DInputError(f"'{name}' is not a CONDITIONING from CLIPTextEncode (a list of [tensor, dict]); connect CLIPTextEncode.")
    if len(cond) > 1:
        log.warning("One4D: '%s' holds %d conditionings; only the first is used (combine prompts in one text instead).", name, len(cond))
    tensor = tensor if tensor.ndim == 3 else tensor[None]
    return tensor[:1].float().cpu()


def conditioning_tokens(model: One4DHandle, positive: Any, negative: Any) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """The text tokens of the connected CONDITIONING inputs (None where unconnected), checked against the model:
    a backbone without a built-in text encoder needs ``positive``; a built-in encoder's width must match."""
    context = _context(positive, "positive") if positive is not None else None
    negative_context = _context(negative, "negative") if negative is not None else None
    text_dim = int(model.variant.config["text_dim"])
    if context is None and model.text_encoder is None:
        raise One4DInputError(
            "this backbone needs its prompt as CONDITIONING: connect CLIPTextEncode (CLIPLoader with the umT5 file, type "
            "'wan') to 'positive'. Only the embedded model reads the prompt field."
        )
    for name, ctx in (("positive", context), ("negative", negative_context)):
        if ctx is not None and ctx.shape[-1] != text_dim and model.text_encoder is not None:
            raise One4DInputError(
                f"'{name}' is {ctx.shape[-1]} wide but this model's built-in text encoder is {text_dim} wide: disconnect "
                f"'{name}' and type the prompt in the node instead (the embedded model does not read umT5 text)."
            )
    return context, negative_context


def clip_tokens(model: One4DHandle, output: Any) -> Optional[torch.Tensor]:
    """The CLIP vision tokens for backbones with image cross-attention (None when unused). Unconnected, such a
    backbone gets zero features (257 tokens): Wan2.1-Fun InP's reference code feeds zeros when there is no
    start image (text-to-video), and its training zeroes them at random, so the model knows that input."""
    if output is None:
        if not model.variant.has_image_attention:
            return None
        want = model.variant.config.get("image_dim")
        log.info("One4D: no clip_vision_output connected; the image cross-attention gets zero CLIP features.")
        return torch.zeros(1, CLIP_TOKENS, want)
    if not model.variant.has_image_attention:
        log.info("One4D: this backbone has no image cross-attention; the CLIP vision output is ignored.")
        return None
    tokens = getattr(output, "penultimate_hidden_states", None)
    if tokens is None and isinstance(output, dict):
        tokens = output.get("penultimate_hidden_states")
    if tokens is None:
        raise One4DInputError("clip_vision_output has no penultimate_hidden_states; connect core CLIPVisionEncode.")
    tokens = tokens[:1].float().cpu()
    want = model.variant.config.get("image_dim")
    if want and tokens.shape[-1] != want:
        raise One4DInputError(
            f"the CLIP vision features are {tokens.shape[-1]} wide but the backbone expects {want}; use clip_vision_h.safetensors."
        )
    return tokens


class One4DBuildConditioning:
    DESCRIPTION = (
        "Builds One4D's Unified Masked Conditioning from 0, 1, some or all frames of a video plus text: text-to-4D (no "
        "images), image-to-4D ('first'), sparse frames ('0,20,40,80' or 'even:5') or reconstruction from a video ('all')."
    )
    CATEGORY = "One4D/conditioning"
    RETURN_TYPES = (COND,)
    RETURN_NAMES = ("conditioning",)
    OUTPUT_TOOLTIPS = ("Mask, VAE-encoded frames and text for One4D Sample.",)
    FUNCTION = "build"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The One4D model (its VAE encodes the frames; its backbone sets the text width)."}),
                "width": ("INT", {"default": WAN_FUN_14B.width, "min": 16, "max": MAX_SIDE, "step": 16,
                                  "tooltip": "Video width in pixels, a multiple of the VAE stride x patch: 16 for Wan (832 at 480p), 8 for the embedded model (64)."}),
                "height": ("INT", {"default": WAN_FUN_14B.height, "min": 16, "max": MAX_SIDE, "step": 16,
                                   "tooltip": "Video height in pixels, a multiple of the VAE stride x patch: 16 for Wan (480 at 480p), 8 for the embedded model (64)."}),
                "length": ("INT", {"default": WAN_FUN_14B.frames, "min": 1, "max": MAX_FRAMES, "step": 4,
                                   "tooltip": "Number of frames, 4k+1 (81 for Wan, 17 for the embedded model)."}),
                "frame_indices": ("STRING", {"default": "first",
                                             "tooltip": "Which frames the images are: none (text-to-4D), first (image-to-4D), all "
                                                        "(reconstruct a video), a list like 0,20,40,80, or even:N (N evenly spaced)."}),
                "prompt": ("STRING", {"default": "", "multiline": True,
                                      "tooltip": "Prompt for backbones with a built-in text encoder (the embedded model). Ignored when "
                                                 "'positive' is connected."}),
                "negative_prompt": ("STRING", {"default": "", "multiline": True,
                                               "tooltip": "Negative prompt for backbones with a built-in text encoder. Ignored when "
                                                          "'negative' is connected."}),
            },
            "optional": {
                "images": ("IMAGE", {"tooltip": "The observed frames: one image, a few images, or a whole video (IMAGE batch)."}),
                "positive": ("CONDITIONING", {"tooltip": "Prompt from CLIPTextEncode with the Wan umT5 text encoder (CLIPLoader type wan)."}),
                "negative": ("CONDITIONING", {"tooltip": "Negative prompt from CLIPTextEncode (umT5). Without it the unconditional "
                                                         "text is all zeros."}),
                "clip_vision_output": ("CLIP_VISION_OUTPUT", {"tooltip": "CLIPVisionEncode of the first frame (clip_vision_h) for "
                                                                          "backbones with image cross-attention (Wan2.1-Fun 14B InP)."}),
                "fit": (list(FITS), {"default": "crop",
                                     "tooltip": "Images of another aspect ratio: crop the centre (fills the frame) or pad with the "
                                                "unobserved-frame gray (keeps all of the picture). What was cut or padded is logged."}),
            },
        }

    def build(self, model: One4DHandle, width, height, length, frame_indices, prompt="", negative_prompt="",
              images=None, positive=None, negative=None, clip_vision_output=None, fit="crop"):
        check_video(int(length), int(height), int(width), geometry=model.geometry)
        if fit not in FITS:
            raise One4DInputError(f"fit '{fit}' is unknown; choose 'crop' (cut the centre) or 'pad' (keep all, gray margins).")
        frames, indices = select_frames(images, frame_indices, int(length))
        if frames is not None:
            note = fit_note(int(frames.shape[1]), int(frames.shape[2]), int(height), int(width), fit)
            if note:
                log.warning("One4D: %s", note)
            frames = fit_frames(frames, int(height), int(width), fit)
        context, negative_context = conditioning_tokens(model, positive, negative)
        clip = clip_tokens(model, clip_vision_output)
        encoder = model.text_encoder
        context, negative_context = text_contexts(encoder, prompt or "", negative_prompt or "", context, negative_context)
        codec = model.load_vae(int(length), int(height), int(width))
        with model.cpu_threads():
            cond = build_conditioning(codec, model.variant, int(length), int(height), int(width), frames, indices, context,
                                      negative_context, int(getattr(encoder, "length", TEXT_LEN)), clip, model.refine_steps)
        for name in ("mask", "cond_latents", "context", "negative_context", "clip_context", "pinned_latents"):
            value = getattr(cond, name)
            if value is not None:
                setattr(cond, name, value.detach().cpu())
        mode = mode_of(indices, int(length))
        log.info("One4D: %s conditioning, %d observed frame(s) of %d, %dx%d", mode, len(indices), length, width, height)
        return (CondData(cond, mode, None if frames is None else frames.numpy()),)
