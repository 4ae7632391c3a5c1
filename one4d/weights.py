"""The One4D weight file: both modality adapters, the control links and metadata in one safetensors file.

Keys: ``rgb.<peft key>`` and ``xyz.<peft key>`` where the peft key is peft's own adapter-free name
(``blocks.0.attn1.to_q.lora_A.weight``), and ``links.{xyz_to_rgb|rgb_to_xyz}.<slot>.{weight|bias}``.
Metadata (strings): ``format=one4d``, ``format_version``, ``rank``, ``alpha``, ``link_layers``,
``base`` (JSON: hidden size, blocks, input channels, image attention, preset name) and ``normalization``
(JSON: how the pointmaps the model generates were normalized, :data:`NORMALIZATION`).
Loading checks the metadata against the loaded backbone first, so a file for another model size gets an
error naming both, never a shape error from deep inside torch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

from .backbone import DitVariant, read_safetensors
from .dlc import BRANCHES, DLCConfig, One4DModel
from .errors import One4DInputError
from .export.atomic import atomic_path
from .pointmap import PERCENTILE
from .sharding import full_tensor, is_writer

FORMAT = "one4d"
FORMAT_VERSION = "1"
NORMALIZATION = {
    "scheme": "median-shift-percentile-scale",
    "shift": "median z of the clip's valid points",
    "scale": f"{PERCENTILE:g}th percentile of max(|x|, |y|, |z - shift|)",
    "range": [-1.0, 1.0],
    "space": "first camera of the clip, OpenCV axes",
}


def base_signature(variant: DitVariant) -> dict[str, Any]:
    """What a One4D file must agree with in the backbone."""
    c = variant.config
    return {
        "hidden": variant.hidden_size,
        "blocks": c["num_layers"],
        "in_channels": c["in_channels"],
        "image_attention": variant.has_image_attention,
        "text_dim": c["text_dim"],
        "preset": variant.preset,
    }


def read_metadata(path: str | Path) -> dict[str, str]:
    """The string metadata of a safetensors file (error naming the file if unreadable)."""
    p = Path(path)
    if not p.is_file():
        raise One4DInputError(f"One4D weight file '{p}' does not exist; put it in models/one4d or fix the path.")
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as exc:
        raise One4DInputError(f"'{p.name}' is not a readable safetensors file ({exc}); download it again.") from exc


def dlc_config_from_metadata(meta: dict[str, str], source: str) -> DLCConfig:
    if meta.get("format") != FORMAT:
        raise One4DInputError(
            f"'{source}' is not a One4D weight file (no format=one4d metadata). If it is a community Wan LoRA, "
            "load it with the extra-LoRA option on the RGB branch instead."
        )
    return DLCConfig(
        rank=int(meta["rank"]),
        alpha=float(meta["alpha"]),
        link_layers=tuple(json.loads(meta["link_layers"])),
        link_bias=meta.get("link_bias", "true") == "true",
    )


def check_fits(meta: dict[str, str], variant: DitVariant, source: str) -> None:
    """Raise if a One4D file was made for another backbone (size, depth, channels, image attention)."""
    want = json.loads(meta["base"])
    have = base_signature(variant)
    diff = [k for k in ("hidden", "blocks", "in_channels", "image_attention", "text_dim") if want.get(k) != have[k]]
    if diff:
        raise One4DInputError(
            f"'{source}' was trained for a {want.get('preset') or 'different'} backbone "
            f"(hidden {want.get('hidden')}, {want.get('blocks')} blocks, {want.get('in_channels')} input channels, "
            f"image attention {want.get('image_attention')}), but the loaded backbone is {have['preset'] or 'custom'} "
            f"(hidden {have['hidden']}, {have['blocks']} blocks, {have['in_channels']} input channels, "
            f"image attention {have['image_attention']}). Load the matching Wan DiT, or the matching One4D file."
        )


def one4d_tensors(model: One4DModel) -> dict[str, torch.Tensor]:
    """Adapters and links of ``model`` under the One4D file's key names, whole and on the CPU (a model
    sharded across processes is gathered: every process must call this)."""
    whole = lambda v: full_tensor(v.detach()).contiguous().cpu()  # noqa: E731
    tensors: dict[str, torch.Tensor] = {}
    for name in BRANCHES:
        sd = get_peft_model_state_dict(model.dit, adapter_name=name)
        tensors.update({f"{name}.{k}": whole(v) for k, v in sd.items()})
    tensors.update({f"links.{k}": whole(v) for k, v in model.links.state_dict().items()})
    return tensors


def save_one4d(model: One4DModel, path: str | Path, extra_metadata: dict[str, str] | None = None) -> None:
    """Write adapters, links and metadata atomically. A model sharded across processes is gathered whole
    (every process must call this) and written by the first process only."""
    tensors = one4d_tensors(model)
    if not is_writer():
        return
    cfg = model.config
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rank": str(cfg.rank),
        "alpha": str(cfg.alpha),
        "link_layers": json.dumps(list(cfg.link_layers)),
        "link_bias": "true" if cfg.link_bias else "false",
        "base": json.dumps(base_signature(model.variant)),
        "normalization": json.dumps(NORMALIZATION),
        **(extra_metadata or {}),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_one4d_into(model: One4DModel, path: str | Path) -> dict[str, str]:
    """Load a One4D file's adapters and links into ``model`` (built with the file's DLC config); returns metadata."""
    source = Path(path).name
    meta = read_metadata(path)
    cfg = dlc_config_from_metadata(meta, source)
    check_fits(meta, model.variant, source)
    if (cfg.rank, cfg.link_layers) != (model.config.rank, model.config.link_layers):
        raise One4DInputError(f"'{source}' has rank {cfg.rank} and links {cfg.link_layers}; the model was built with "
                              f"rank {model.config.rank} and links {model.config.link_layers}. Build it from the file's metadata.")
    load_one4d_tensors(model, read_safetensors(path), source)
    return meta


def load_one4d_tensors(model: One4DModel, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load adapters and links under the One4D file's key names into ``model`` (shapes must match)."""
    for name in BRANCHES:
        prefix = f"{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        result = set_peft_model_state_dict(model.dit, sd, adapter_name=name)
        if getattr(result, "unexpected_keys", None):
            raise One4DInputError(f"'{source}' has {name} adapter weights this backbone lacks: {result.unexpected_keys[:2]}.")
    links = {k[len("links."):]: v for k, v in tensors.items() if k.startswith("links.")}
    try:
        model.links.load_state_dict(links, strict=True)
    except RuntimeError as exc:
        raise One4DInputError(f"'{source}': control links do not fit this backbone ({str(exc).splitlines()[0]}).") from None


def build_one4d(dit: torch.nn.Module, variant: DitVariant, path: str | Path) -> One4DModel:
    """Wrap a loaded backbone with DLC from a One4D file (config taken from the file's metadata)."""
    source = Path(path).name
    meta = read_metadata(path)
    cfg = dlc_config_from_metadata(meta, source)
    check_fits(meta, variant, source)
    model = One4DModel(dit, variant, cfg)
    load_one4d_into(model, path)
    return model
