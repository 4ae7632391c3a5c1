"""Loader nodes: the Wan backbone (or the embedded model), the One4D weights, community LoRAs."""
from __future__ import annotations

import logging

from one4d.defaults import EMBEDDED_NOTICE

from . import comfy_bridge as bridge
from .cache import DTYPES, EMBEDDED, STORAGE
from .handle import ATTENTION, MEMORY, One4DHandle, make_handle
from .values import MODEL

CATEGORY = "One4D/loaders"
log = logging.getLogger("one4d")
_told: set[str] = set()


def say_once(notice: str) -> None:
    """Log a notice the first time it applies in this ComfyUI session."""
    if notice not in _told:
        _told.add(notice)
        log.warning("One4D: %s", notice)


class One4DLoadBackbone:
    DESCRIPTION = (
        "Loads a Wan2.1 video DiT (from models/diffusion_models) and the Wan2.1 VAE (from models/vae), or the small "
        "embedded One4D model that ships with the pack and runs on a CPU. Follow it with One4D Apply Pointmap LoRA. "
        + EMBEDDED_NOTICE[0].upper() + EMBEDDED_NOTICE[1:]
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The backbone, ready for One4D Apply Pointmap LoRA.",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dit_name": ([EMBEDDED] + bridge.dit_files(), {
                    "tooltip": "The Wan2.1 DiT: a Wan2.1-Fun InP (36 input channels, e.g. the 14B V1.1 InP file) for image, sparse and "
                               "video conditioning; a Wan2.1 T2V file allows text-to-4D only. safetensors (bf16/fp16/fp8) or a "
                               "ComfyUI-GGUF .gguf file (needs the gguf package; dequantized at load). 'embedded' is the pack's own small model."}),
                "vae_name": ([EMBEDDED] + bridge.model_files("vae"), {
                    "tooltip": "The Wan2.1 VAE (wan_2.1_vae.safetensors). Use 'embedded' with the embedded DiT."}),
                "dtype": (list(DTYPES), {"default": "auto",
                    "tooltip": "Compute precision of the DiT. auto: bf16 on GPUs that support it (else fp16), fp32 for the embedded model."}),
                "weight_storage": (list(STORAGE), {"default": "auto",
                    "tooltip": "How weights are kept in memory. auto: fp8 files stay fp8 (up-cast layer by layer), others use the compute "
                               "dtype; fp8_e4m3fn: also store bf16/fp16 files as fp8 (half the memory, slightly lower quality); "
                               "full: everything in the compute dtype."}),
                "attention": (list(ATTENTION), {"default": "sdpa",
                    "tooltip": "Attention kernel: sdpa (PyTorch, works everywhere), or flash / sage / xformers when their package is installed."}),
                "memory": (list(MEMORY), {"default": "auto",
                    "tooltip": "auto: ComfyUI loads the whole model onto the GPU and may unload it later for other models. block_swap: the "
                               "transformer blocks stay in RAM and stream through the GPU one at a time (for GPUs that cannot hold the model; slower)."}),
            }
        }

    def load(self, dit_name, vae_name, dtype="auto", weight_storage="auto", attention="sdpa", memory="auto"):
        handle = make_handle(dit_name, vae_name, dtype, weight_storage, attention, memory)
        if handle.is_embedded:
            say_once(EMBEDDED_NOTICE)
        return (handle,)


class One4DApplyPointmapLoRA:
    DESCRIPTION = (
        "Applies a One4D weight file (from models/one4d): the pointmap (XYZ) LoRA, the RGB LoRA it was trained with, and the "
        "control links between the two branches. The file must be made for the loaded backbone."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The backbone with both One4D branches; connect it to Build Conditioning, Sample and Decode.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "The backbone from One4D Load Backbone."}),
                "one4d_weights": ([EMBEDDED] + bridge.model_files(bridge.ONE4D_FOLDER), {
                    "tooltip": "A One4D weight file from models/one4d ('embedded' for the embedded backbone). A file made for another "
                               "backbone size is refused with a message naming both."}),
            }
        }

    def apply(self, model: One4DHandle, one4d_weights):
        return (model.with_one4d(one4d_weights),)


class One4DApplyRGBLoRA:
    DESCRIPTION = (
        "Stacks a community Wan2.1 LoRA (from models/loras; ComfyUI, musubi-tuner or diffusers key style) on the RGB branch only, "
        "with a strength. The pointmap branch never sees it. Chain several nodes to stack several LoRAs."
    )
    CATEGORY = CATEGORY
    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The model with the LoRA added to its RGB branch.",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL, {"tooltip": "A model that already has its One4D weights (after One4D Apply Pointmap LoRA)."}),
                "lora_name": (bridge.model_files("loras"), {"tooltip": "A Wan2.1 LoRA made for the same model size as the backbone."}),
                "strength": ("FLOAT", {"default": 1.0, "min": -4.0, "max": 4.0, "step": 0.05,
                                       "tooltip": "Scale of the LoRA's effect on the RGB branch (0 turns it off)."}),
            }
        }

    def apply(self, model: One4DHandle, lora_name, strength=1.0):
        return (model.with_lora(lora_name, strength),)
