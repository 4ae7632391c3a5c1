"""The ``ONE4D_MODEL`` socket's value: an immutable description of a model, and how it reaches the GPU.

A :class:`One4DHandle` says which DiT/VAE entry, which One4D weight file, which community LoRAs at which
strength, attention and memory mode. The heavy objects live in :mod:`nodes.cache`, so ComfyUI's own
node-output cache can hold old handles safely: a handle never mutates what another handle sees, because
:meth:`One4DHandle.model` brings the shared DiT to the state *that handle* asks for (loading other One4D
weights into the same adapters when the layout matches, re-reading the DiT when it does not); community
LoRAs are extra RGB-only peft adapters named by file identity, applied only when a handle lists them
(strength is passed at sampling time, so changing it costs nothing).

Before sampling, the One4D model (DiT + adapters + links, wrapped in ComfyUI's ``ModelPatcher``) is loaded
with ``load_models_gpu`` ("auto" memory mode; ComfyUI may evict it afterwards for other models), or its
blocks are streamed through the GPU ("block_swap", :mod:`nodes.offload`). The VAE has its own patcher.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
from peft.utils import set_peft_model_state_dict

from one4d.backbone import read_safetensors
from one4d.defaults import EMBEDDED as EMBEDDED_DEFAULTS
from one4d.dlc import One4DModel
from one4d.errors import One4DInputError
from one4d.lora_styles import load_rgb_lora, to_peft_keys
from one4d.umc import Conditioning, model_geometry
from one4d.weights import check_fits, dlc_config_from_metadata, load_one4d_into, read_metadata

from . import comfy_bridge as bridge
from .cache import EMBEDDED, FP8_DTYPES, DitEntry, VaeEntry, embedded_folder, file_key, get_dit, get_vae

log = logging.getLogger("one4d")

ATTENTION = {"sdpa": "native", "flash": "flash", "sage": "sage", "xformers": "xformers"}
MEMORY = ("auto", "block_swap")


@dataclass(frozen=True)
class LoraRef:
    label: str
    path: str
    key: tuple
    strength: float

    @property
    def adapter(self) -> str:
        return "rgb_lora_" + hashlib.sha1(repr(self.key).encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class One4DHandle:
    dit: DitEntry
    vae: VaeEntry
    attention: str = "sdpa"
    memory: str = "auto"
    one4d: Optional[tuple] = None  # (label, path, file key)
    loras: tuple = ()

    # --- what the other nodes read -------------------------------------------------------------------
    @property
    def variant(self):
        return self.dit.variant

    @property
    def codec(self):
        return self.vae.codec

    @property
    def text_encoder(self):
        return self.dit.text_encoder

    @property
    def geometry(self):
        """Latent channels, strides and patch of this DiT + VAE, read from their configs."""
        return model_geometry(self.codec, self.variant)

    @property
    def is_embedded(self) -> bool:
        return self.dit.label == EMBEDDED

    @property
    def refine_steps(self) -> int:
        """Steps refining the given image of image-to-4D for the decoder: the embedded kind's; none for Wan
        (:mod:`one4d.defaults`)."""
        return EMBEDDED_DEFAULTS.refine_steps if self.is_embedded else 0

    def extras(self) -> list[tuple[str, float]]:
        return [(ref.adapter, float(ref.strength)) for ref in self.loras]

    def describe(self) -> str:
        parts = [f"DiT {self.dit.label}", f"VAE {self.vae.label}"]
        if self.one4d:
            parts.append(f"One4D {self.one4d[0]}")
        parts += [f"LoRA {r.label} x{r.strength:g}" for r in self.loras]
        return ", ".join(parts)

    # --- derived handles (Apply nodes) --------------------------------------------------------------
    def with_one4d(self, label: str) -> "One4DHandle":
        path = embedded_folder().file("one4d") if label == EMBEDDED else bridge.model_path(bridge.ONE4D_FOLDER, label)
        meta = read_metadata(path)
        dlc_config_from_metadata(meta, path.name)
        check_fits(meta, self.variant, path.name)
        handle = replace(self, one4d=(label, str(path), file_key(path)), loras=())
        handle.model()  # load now, so a bad file is reported on this node
        return handle

    def with_lora(self, label: str, strength: float) -> "One4DHandle":
        if self.one4d is None:
            raise One4DInputError("apply the One4D weights first (One4D Apply Pointmap LoRA), then stack community LoRAs on the RGB branch.")
        path = bridge.model_path("loras", label)
        ref = LoraRef(label, str(path), file_key(path), float(strength))
        if any(r.key == ref.key for r in self.loras):
            raise One4DInputError(f"the LoRA '{label}' is already applied to this model; change its strength instead of applying it twice.")
        handle = replace(self, loras=self.loras + (ref,))
        handle.model()
        return handle

    # --- bring the shared DiT into this handle's state ---------------------------------------------
    def model(self):
        """The One4D model with this handle's weights and LoRAs present (loaded on first use)."""
        if self.one4d is None:
            raise One4DInputError("this model has no One4D weights yet: add a One4D Apply Pointmap LoRA node after One4D Load Backbone.")
        entry = self.dit
        if entry.dit is None:
            entry.load()
        label, path, key = self.one4d
        if entry.model is None or entry.one4d_key != key:
            self._apply_one4d(entry, Path(path), key)
        for ref in self.loras:
            if ref.key not in entry.loras:
                self._apply_lora(entry, ref)
        return entry.model

    def _apply_one4d(self, entry: DitEntry, path: Path, key: tuple) -> None:
        cfg = dlc_config_from_metadata(read_metadata(path), path.name)
        if entry.model is not None:
            current = entry.model.config
            if (cfg.rank, tuple(cfg.link_layers or ()), cfg.link_bias) == (current.rank, current.link_layers, current.link_bias):
                load_one4d_into(entry.model, path)
                entry.one4d_key = key
                return
            log.info("One4D: %s has another adapter layout; re-reading the DiT", path.name)
            entry.load()
        try:
            model = One4DModel(entry.dit, entry.variant, cfg).eval()
            model.set_trainable(False)
            _adapters_to_compute_dtype(model, entry.dtype)
            load_one4d_into(model, path)
        except BaseException:
            entry.release()  # the DiT may hold half-injected adapters: read it again on next use
            raise
        entry.model, entry.one4d_key = model, key
        entry.patcher = bridge.make_patcher(model, bridge.torch_device(), bridge.offload_device())

    def _apply_lora(self, entry: DitEntry, ref: LoraRef) -> None:
        model = entry.model
        load_rgb_lora(model, ref.path, ref.adapter)
        if _adapters_to_compute_dtype(model, entry.dtype):  # weights went into fp8 adapters: load them again
            set_peft_model_state_dict(model.dit, to_peft_keys(read_safetensors(ref.path)), adapter_name=ref.adapter)
        entry.loras[ref.key] = ref.adapter
        bridge.unload_from_comfy(entry.patcher)  # size changed: a fresh patcher measures it again
        entry.patcher = bridge.make_patcher(model, bridge.torch_device(), bridge.offload_device())

    # --- devices ------------------------------------------------------------------------------------
    def activation_bytes(self, cond: Conditioning, guided: bool) -> int:
        """Rough peak activation memory of one sampling step (what ComfyUI should keep free for it):
        hidden states, q/k/v and attention output (6 x width) plus the FFN's two intermediates (2 x ffn)
        for every token of both branches, cond and uncond; e.g. 15 GB for the 14B DiT at 81 x 480 x 832."""
        cfg = self.variant.config
        t, h, w = cond.latent_shape
        p = cond.geometry.patch
        tokens = t * (h // p) * (w // p)
        batch = 2 * (2 if guided else 1)
        per_token = 6 * self.variant.hidden_size + 2 * cfg["ffn_dim"]
        size = 4 if self.dit.dtype == torch.float32 else 2
        return batch * tokens * per_token * size

    def load_for_sampling(self, memory_required: int = 0):
        """The One4D model on its compute device (whole, or with block swapping), attention backend set."""
        model = self.model()
        entry = self.dit
        backend = ATTENTION.get(self.attention)
        if backend is None:
            raise One4DInputError(f"attention '{self.attention}' is unknown; choose one of {', '.join(ATTENTION)}.")
        if entry.attention != self.attention:
            try:
                entry.dit.set_attention_backend(backend)
            except Exception as exc:
                raise One4DInputError(
                    f"attention '{self.attention}' is not available here ({str(exc).splitlines()[0][:160]}); "
                    "install its package or choose 'sdpa'."
                ) from None
            entry.attention = self.attention
        device = bridge.torch_device()
        if self.memory == "block_swap" and device.type != "cpu":
            bridge.unload_from_comfy(entry.patcher)
            block_bytes = max(sum(p.numel() * p.element_size() for p in b.parameters()) for b in entry.dit.blocks)
            bridge.free_memory(4 * block_bytes + memory_required, device)
            entry.swap.attach(model, entry.dit.blocks, device, bridge.offload_device())
        else:
            if entry.swap.attached:
                entry.swap.detach()
            bridge.load_models([entry.patcher], memory_required)
        return model

    def after_sampling(self) -> None:
        if self.dit.swap.attached:
            self.dit.swap.detach()

    def load_vae(self, frames: int = 0, height: int = 0, width: int = 0):
        """The VAE on its device, with room for coding ``frames`` x ``height`` x ``width`` (two videos at once:
        RGB and pointmap): the float32 videos plus about as much again for the causal convolutions' caches."""
        bridge.load_models([self.vae.patcher], 4 * 2 * 3 * frames * height * width * 4)
        return self.vae.codec

    @contextlib.contextmanager
    def cpu_threads(self):
        """Run the embedded model's tiny ops on one CPU thread (``ONE4D_EMBEDDED_THREADS`` overrides).

        Measured on a 2-core machine with other work running: 0.07 s per sampling step on one thread,
        4.5 s on two (OpenMP threads waiting on busy cores). Small tensors gain nothing from threads, so the
        limit is applied, and restored afterwards, only around the embedded model on a CPU."""
        if not self.is_embedded or bridge.torch_device().type != "cpu":
            yield
            return
        previous = torch.get_num_threads()
        torch.set_num_threads(max(1, int(os.environ.get("ONE4D_EMBEDDED_THREADS", "1"))))
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def _adapters_to_compute_dtype(model, dtype: torch.dtype) -> bool:
    """Keep LoRA adapter weights in the compute dtype when the base layers store fp8 (peft would otherwise
    create the adapters in fp8, and the library falls back to bf16, which may not be the compute dtype).
    Returns whether anything was converted."""
    changed = False
    for _, layer in model.lora_layers():
        if layer.base_layer.weight.dtype not in FP8_DTYPES:
            continue
        for group in (layer.lora_A, layer.lora_B):
            for name, lin in group.items():
                if lin.weight.dtype != dtype:
                    group[name] = lin.to(dtype)
                    changed = True
    return changed


def make_handle(dit_name: str, vae_name: str, dtype: str, storage: str, attention: str, memory: str) -> One4DHandle:
    if attention not in ATTENTION:
        raise One4DInputError(f"attention '{attention}' is unknown; choose one of {', '.join(ATTENTION)}.")
    if memory not in MEMORY:
        raise One4DInputError(f"memory '{memory}' is unknown; choose one of {', '.join(MEMORY)}.")
    dit = get_dit(dit_name, dtype, storage)
    vae = get_vae(vae_name)
    return One4DHandle(dit, vae, attention, memory)
