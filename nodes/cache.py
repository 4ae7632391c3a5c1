"""The pack's model cache: at most one DiT and one VAE in memory, reused across prompts.

Repeated prompts reuse the loaded DiT, VAE, adapters and LoRAs (nothing is re-read from disk); choosing
another file drops the old one (and tells ComfyUI's model manager), so a second prompt with other settings
does not grow memory. :func:`clear_cache` drops everything; the pack registers it with ComfyUI's "unload
models" (the frontend's and ComfyUI-Manager's free-memory buttons, ``POST /free``). How a handle brings the
cached DiT into the state it asks for is in :mod:`nodes.handle`.
"""
from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from one4d import precision
from one4d.backbone import load_dit, load_vae
from one4d.codec import VideoCodec
from one4d.errors import One4DInputError
from one4d.models import ModelFolder

from . import comfy_bridge as bridge
from .offload import BlockSwap

log = logging.getLogger("one4d")

EMBEDDED = "embedded (CPU demo)"
DTYPES = ("auto", "bf16", "fp16", "fp32")
STORAGE = ("auto", "fp8_e4m3fn", "full")
_TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)


def embedded_folder() -> ModelFolder:
    """The embedded model's folder (``ONE4D_EMBEDDED_DIR`` overrides it, e.g. with a ``one4d train`` work folder)."""
    return ModelFolder.open(os.environ.get("ONE4D_EMBEDDED_DIR") or "embedded")


def file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


# ---------------------------------------------------------------------------------------------------------
# cache entries
# ---------------------------------------------------------------------------------------------------------

class One4DVAE(nn.Module):
    """A plain module around a diffusers model: ModelPatcher sets ``.device`` on what it manages, and the
    diffusers models expose ``device`` as a read-only property."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner


@dataclass(eq=False)
class DitEntry:
    key: tuple
    label: str
    loader: Callable[[], tuple]  # () -> (dit, variant)
    dtype: torch.dtype
    dit: nn.Module = None
    variant: object = None
    text_encoder: Optional[Callable] = None
    model: Optional[nn.Module] = None  # One4DModel once One4D weights are applied
    one4d_key: Optional[tuple] = None
    loras: dict = field(default_factory=dict)  # file key -> adapter name
    patcher: object = None
    swap: BlockSwap = field(default_factory=BlockSwap)
    attention: str = "sdpa"

    def load(self) -> None:
        self.release()
        self.dit, self.variant = self.loader()
        self.model, self.one4d_key, self.loras, self.patcher = None, None, {}, None

    def release(self) -> None:
        if self.swap.attached:
            self.swap.detach()
        bridge.unload_from_comfy(self.patcher)
        self.dit = self.model = self.patcher = None
        self.loras = {}
        self.one4d_key = None


@dataclass(eq=False)
class VaeEntry:
    key: tuple
    label: str
    codec: object
    holder: nn.Module
    patcher: object

    def release(self) -> None:
        bridge.unload_from_comfy(self.patcher)
        self.codec = self.holder = self.patcher = None


_DIT: Optional[DitEntry] = None
_VAE: Optional[VaeEntry] = None


def clear_cache() -> None:
    """Drop every cached model (tests; also frees memory when ComfyUI asks nodes to unload)."""
    global _DIT, _VAE
    for entry in (_DIT, _VAE):
        if entry is not None:
            entry.release()
    _DIT = _VAE = None
    gc.collect()
    bridge.soft_empty_cache()


def _pick_dtype(choice: str, embedded: bool) -> torch.dtype:
    if choice != "auto":
        return _TORCH_DTYPES[choice]
    if embedded:
        return torch.float32
    device = bridge.torch_device()
    return torch.bfloat16 if device.type == "cpu" or bridge.supports_bf16(device) else torch.float16


def get_dit(dit_name: str, dtype_choice: str, storage: str) -> DitEntry:
    """The cached DiT entry for these settings (loaded now if needed)."""
    global _DIT
    embedded = dit_name == EMBEDDED
    if dtype_choice not in DTYPES:
        raise One4DInputError(f"dtype '{dtype_choice}' is unknown; choose one of {', '.join(DTYPES)}.")
    if storage not in STORAGE:
        raise One4DInputError(f"weight_storage '{storage}' is unknown; choose one of {', '.join(STORAGE)}.")
    dtype = _pick_dtype(dtype_choice, embedded)
    folder = embedded_folder() if embedded else None
    path = folder.file("dit") if folder else bridge.dit_path(dit_name)
    key = ("dit", file_key(path), str(dtype), "full" if embedded else storage)
    if _DIT is not None and _DIT.key == key:
        return _DIT
    if _DIT is not None:
        log.info("One4D: releasing the DiT %s", _DIT.label)
        _DIT.release()
        _DIT = None
        gc.collect()
        bridge.soft_empty_cache()
    entry = DitEntry(key, dit_name, _dit_loader(path, folder, dtype, storage), dtype)
    entry.load()
    if folder is not None:
        entry.text_encoder = folder.text_encoder(entry.variant)
    _DIT = entry
    return entry


def _dit_loader(path: Path, folder: Optional[ModelFolder], dtype: torch.dtype, storage: str) -> Callable[[], tuple]:
    def load():
        if folder is not None:
            dit, variant = folder.load_dit()
            return (dit if next(dit.parameters()).dtype == dtype else dit.to(dtype)), variant
        log.info("One4D: loading DiT %s (%s, storage %s)", path.name, dtype, storage)
        device = bridge.torch_device()
        dit, variant = load_dit(path, dtype=dtype, keep_fp8=storage != "full", device="cpu", compute_device=device)
        if storage == "fp8_e4m3fn" and not precision.has_fp8(dit):
            if precision.fp8_storage_supported(device):
                dit.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
            else:
                log.warning("One4D: %s cannot hold fp8 weights; weight_storage fp8_e4m3fn is ignored and %s stays in %s.",
                            device.type, path.name, str(dtype).replace("torch.", ""))
        return dit, variant

    return load


def get_vae(vae_name: str) -> VaeEntry:
    global _VAE
    embedded = vae_name == EMBEDDED
    folder = embedded_folder() if embedded else None
    path = folder.file("vae") if folder else bridge.model_path("vae", vae_name)
    device = bridge.vae_device()
    dtype = torch.float32 if embedded or device.type == "cpu" or not bridge.supports_bf16(device) else torch.bfloat16
    key = ("vae", file_key(path), str(dtype))
    if _VAE is not None and _VAE.key == key:
        return _VAE
    if _VAE is not None:
        _VAE.release()
        _VAE = None
        gc.collect()
    vae = folder.load_vae() if folder else load_vae(path, dtype=dtype)
    holder = One4DVAE(vae)
    _VAE = VaeEntry(key, vae_name, VideoCodec(vae), holder, bridge.make_patcher(holder, device, torch.device("cpu")))
    return _VAE
