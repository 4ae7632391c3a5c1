"""Model management for the nodes: what is loaded, how it is reused, and how it reaches the GPU.

The ``ONE4D_MODEL`` socket carries a :class:`One4DHandle`: an immutable description (which DiT/VAE entry,
which One4D weight file, which community LoRAs at which strength, attention and memory mode). The heavy
objects live in a small cache here, so that

- repeated prompts reuse the loaded DiT, VAE, adapters and LoRAs (nothing is re-read from disk);
- ComfyUI's own node-output cache can hold old handles safely: a handle never mutates what another handle
  sees, because :meth:`One4DHandle.model` brings the shared DiT to the state *that handle* asks for
  (loading other One4D weights into the same adapters when the layout matches, re-reading the DiT when
  it does not); community LoRAs are extra RGB-only peft adapters named by file identity, applied only when
  a handle lists them (strength is passed at sampling time, so changing it costs nothing);
- at most one DiT and one VAE are cached; choosing another file drops the old one (and tells ComfyUI's
  model manager), so a second prompt with other settings does not grow memory.

Before sampling, the One4D model (DiT + adapters + links, wrapped in ComfyUI's ``ModelPatcher``) is loaded
with ``load_models_gpu`` ("auto" memory mode; ComfyUI may evict it afterwards for other models), or its
blocks are streamed through the GPU ("block_swap", :mod:`nodes.offload`). The VAE has its own patcher.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from one4d.errors import One4DInputError

from . import comfy_bridge as bridge
from .offload import BlockSwap

log = logging.getLogger("one4d")

EMBEDDED = "embedded (CPU demo)"
DTYPES = ("auto", "bf16", "fp16", "fp32")
STORAGE = ("auto", "fp8_e4m3fn", "full")
ATTENTION = {"sdpa": "native", "flash": "flash", "sage": "sage", "xformers": "xformers"}
MEMORY = ("auto", "block_swap")
_TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
_FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


def embedded_dir() -> Path:
    """Where the embedded model's files are (``ONE4D_EMBEDDED_DIR`` overrides, e.g. a model retrained with
    ``one4d train``)."""
    from one4d.training import recipe as emb

    d = Path(os.environ.get("ONE4D_EMBEDDED_DIR") or emb.ASSET_DIR)
    missing = [n for n in ("vae.safetensors", "dit.safetensors", "one4d.safetensors") if not (d / n).is_file()]
    if missing:
        raise One4DInputError(f"the embedded model files {missing} are missing from {d}; reinstall the One4D pack.")
    return d


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
    path = embedded_dir() / "dit.safetensors" if embedded else bridge.model_path("diffusion_models", dit_name)
    key = ("dit", file_key(path), str(dtype), "full" if embedded else storage)
    if _DIT is not None and _DIT.key == key:
        return _DIT
    if _DIT is not None:
        log.info("One4D: releasing the DiT %s", _DIT.label)
        _DIT.release()
        _DIT = None
        gc.collect()
        bridge.soft_empty_cache()
    entry = DitEntry(key, dit_name, _dit_loader(path, embedded, dtype, storage), dtype)
    entry.load()
    if embedded:
        from one4d.training.recipe import HashTextEncoder

        entry.text_encoder = HashTextEncoder(entry.variant.config["text_dim"])
    _DIT = entry
    return entry


def _dit_loader(path: Path, embedded: bool, dtype: torch.dtype, storage: str) -> Callable[[], tuple]:
    def load():
        if embedded:
            from one4d.training.recipe import load_embedded_dit

            dit, variant = load_embedded_dit(path)
            return (dit if next(dit.parameters()).dtype == dtype else dit.to(dtype)), variant
        from one4d.backbone import load_dit

        log.info("One4D: loading DiT %s (%s, storage %s)", path.name, dtype, storage)
        dit, variant = load_dit(path, dtype=dtype, keep_fp8=storage != "full", device="cpu")
        has_fp8 = any(p.dtype in _FP8 for p in dit.parameters())
        if storage == "fp8_e4m3fn" and not has_fp8:
            dit.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
        return dit, variant

    return load


def get_vae(vae_name: str) -> VaeEntry:
    global _VAE
    embedded = vae_name == EMBEDDED
    path = embedded_dir() / "vae.safetensors" if embedded else bridge.model_path("vae", vae_name)
    device = bridge.vae_device()
    dtype = torch.float32 if embedded or device.type == "cpu" or not bridge.supports_bf16(device) else torch.bfloat16
    key = ("vae", file_key(path), str(dtype))
    if _VAE is not None and _VAE.key == key:
        return _VAE
    if _VAE is not None:
        _VAE.release()
        _VAE = None
        gc.collect()
    from one4d.codec import VideoCodec

    if embedded:
        from one4d.training.recipe import load_embedded_vae

        vae = load_embedded_vae(path)
    else:
        from one4d.backbone import load_vae

        vae = load_vae(path, dtype=dtype)
    holder = One4DVAE(vae)
    _VAE = VaeEntry(key, vae_name, VideoCodec(vae), holder, bridge.make_patcher(holder, device, torch.device("cpu")))
    return _VAE


# ---------------------------------------------------------------------------------------------------------
# the handle on the ONE4D_MODEL socket
# ---------------------------------------------------------------------------------------------------------

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
    def is_embedded(self) -> bool:
        return self.dit.label == EMBEDDED

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
        path = embedded_dir() / "one4d.safetensors" if label == EMBEDDED else bridge.model_path(bridge.ONE4D_FOLDER, label)
        from one4d.weights import check_fits, dlc_config_from_metadata, read_metadata

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
        from one4d.dlc import One4DModel
        from one4d.weights import dlc_config_from_metadata, load_one4d_into, read_metadata

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
        from one4d.lora_styles import load_rgb_lora

        model = entry.model
        load_rgb_lora(model, ref.path, ref.adapter)
        if _adapters_to_compute_dtype(model, entry.dtype):  # weights went into fp8 adapters: load them again
            from peft.utils import set_peft_model_state_dict

            from one4d.backbone import read_safetensors
            from one4d.lora_styles import to_peft_keys

            set_peft_model_state_dict(model.dit, to_peft_keys(read_safetensors(ref.path)), adapter_name=ref.adapter)
        entry.loras[ref.key] = ref.adapter
        bridge.unload_from_comfy(entry.patcher)  # size changed: a fresh patcher measures it again
        entry.patcher = bridge.make_patcher(model, bridge.torch_device(), bridge.offload_device())

    # --- devices ------------------------------------------------------------------------------------
    def activation_bytes(self, cond, guided: bool) -> int:
        """Rough peak activation memory of one sampling step (what ComfyUI should keep free for it):
        hidden states, q/k/v and attention output (6 x width) plus the FFN's two intermediates (2 x ffn)
        for every token of both branches, cond and uncond; e.g. 15 GB for the 14B DiT at 81 x 480 x 832."""
        from one4d.umc import latent_shape

        cfg = self.variant.config
        t, h, w = latent_shape(cond.num_frames, cond.height, cond.width)
        tokens = t * (h // 2) * (w // 2)
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
        if layer.base_layer.weight.dtype not in _FP8:
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
