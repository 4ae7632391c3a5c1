"""ComfyUI nodes of the One4D pack: thin adapters over the ``one4d`` library.

Every ComfyUI import lives in :mod:`nodes.comfy_bridge`; without ComfyUI the classes still import and run
(tests, :mod:`nodes.headless`). Node ids are prefixed ``One4D``; categories live under ``One4D/``. Each
node is declared once, in the V1 form; inside ComfyUI ``NODE_CLASS_MAPPINGS`` holds the same nodes on
core's V3 schema, generated from those declarations by :mod:`nodes.v3` (the V1 classes where that schema
is missing or does not take them).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from . import comfy_bridge, v3
from .cache import clear_cache
from .conditioning import One4DBuildConditioning
from .geometry import One4DCameras
from .long_clip import One4DLongClip
from .loaders import One4DApplyPointmapLoRA, One4DApplyRGBLoRA, One4DLoadBackbone
from .outputs import One4DPreview4D, One4DSave4D
from .sampling import One4DDecode, One4DSample

NODE_CLASS_MAPPINGS = {
    "One4DLoadBackbone": One4DLoadBackbone,
    "One4DApplyPointmapLoRA": One4DApplyPointmapLoRA,
    "One4DApplyRGBLoRA": One4DApplyRGBLoRA,
    "One4DBuildConditioning": One4DBuildConditioning,
    "One4DSample": One4DSample,
    "One4DDecode": One4DDecode,
    "One4DLongClip": One4DLongClip,
    "One4DCameras": One4DCameras,
    "One4DSave4D": One4DSave4D,
    "One4DPreview4D": One4DPreview4D,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "One4DLoadBackbone": "One4D Load Backbone",
    "One4DApplyPointmapLoRA": "One4D Apply Pointmap LoRA",
    "One4DApplyRGBLoRA": "One4D Apply RGB LoRA",
    "One4DBuildConditioning": "One4D Build Conditioning",
    "One4DSample": "One4D Sample",
    "One4DDecode": "One4D Decode",
    "One4DLongClip": "One4D Long Clip",
    "One4DCameras": "One4D Cameras",
    "One4DSave4D": "One4D Save 4D",
    "One4DPreview4D": "One4D Preview 4D",
}

SAMPLE_INPUT = "one4d_sample.png"  # the embedded example workflow's LoadImage file


def install_sample_input() -> None:
    """Copy the pack's sample image into ComfyUI's input folder once, so the embedded example workflow runs
    as soon as it is dropped in (never overwrites a file of that name)."""
    try:
        src = Path(__file__).resolve().parent.parent / "one4d" / "assets" / "sample.png"
        dst = Path(comfy_bridge.input_directory()) / SAMPLE_INPUT
        if src.is_file() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    except OSError as exc:  # a read-only input folder must not stop the pack from loading
        logging.getLogger("one4d").info("One4D: could not copy the sample image to the input folder (%s)", exc)


if comfy_bridge.HAVE_COMFY:
    NODE_CLASS_MAPPINGS = v3.register(NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, comfy_bridge.v3_io())
    comfy_bridge.register_model_folder()
    comfy_bridge.on_unload_models(clear_cache)
    install_sample_input()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
