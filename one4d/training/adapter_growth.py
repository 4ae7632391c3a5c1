"""Continuing One4D training with more adapter capacity than a trained file has (``one4d train one4d
--one4d-init FILE --rank R --links N``), without losing what the file has learned.

Decision: the embedded model's XYZ branch reads little of the scene's own video (docs/embedded.md, the
coupling report), and the issue that sized it allows LoRA ranks up to the paper's 64 and links at more
depths. Rather than retrain larger adapters from zero, a trained file is grown the way LoRA and the links
start: new LoRA ranks get fresh down-projections (``lora_A``, peft's own initialization, taken from the
freshly built model) and zero up-projections (``lora_B``); new link layers start at zero. The grown model
computes exactly what the file computed, and training teaches it to use the new capacity.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..backbone import read_safetensors
from ..dlc import DLCConfig, One4DModel
from ..errors import One4DInputError
from ..weights import check_fits, dlc_config_from_metadata, load_one4d_into, load_one4d_tensors, one4d_tensors, read_metadata


def grow_one4d_tensors(tensors: dict[str, torch.Tensor], old: DLCConfig, model: One4DModel) -> dict[str, torch.Tensor]:
    """A One4D file's tensors (config ``old``) reshaped for ``model``, whose rank is at least the file's and
    whose links include the file's layers; everything the file lacks is the model's own fresh initialization."""
    new = model.config
    if new.rank < old.rank or not set(old.link_layers) <= set(new.link_layers):
        raise One4DInputError(
            f"--one4d-init has rank {old.rank} and links at blocks {list(old.link_layers)}; the model to train has rank "
            f"{new.rank} and links at {list(new.link_layers)}. A file can only grow: give --rank >= {old.rank}, and --links "
            f"{model.variant.config['num_layers']} (a link at every block includes any file's) or the file's own count."
        )
    if new.link_bias != old.link_bias:
        raise One4DInputError(f"--one4d-init's links {'have' if old.link_bias else 'lack'} a bias and the model's do not match; "
                              "train with the file's link settings.")
    out = one4d_tensors(model)  # the fresh model: peft's lora_A init, zero lora_B, zero links
    rescale = (old.alpha / old.rank) / (new.alpha / new.rank)  # keep scale * B @ A of every layer
    for key, fresh in out.items():
        if key.startswith("links."):
            continue
        if key not in tensors:
            raise One4DInputError(f"--one4d-init lacks the adapter weight '{key}'; it was trained for another backbone.")
        trained = tensors[key].to(fresh.dtype)
        if key.endswith("lora_A.weight"):  # [rank, in]: trained rows first, fresh rows after
            out[key] = torch.cat([trained, fresh[old.rank:]])
        else:  # lora_B.weight, [out, rank]: trained columns, zeros for the new ranks
            out[key] = torch.cat([trained * rescale, torch.zeros_like(fresh[:, old.rank:])], dim=1)
    for slot, layer in enumerate(old.link_layers):
        to = new.link_layers.index(layer)
        for direction in ("rgb_to_xyz", "xyz_to_rgb"):
            for part in ("weight", "bias") if old.link_bias else ("weight",):
                out[f"links.{direction}.{to}.{part}"] = tensors[f"links.{direction}.{slot}.{part}"].to(out[f"links.{direction}.{to}.{part}"].dtype)
    return out


def init_one4d(model: One4DModel, path: str | Path) -> dict[str, str]:
    """Start training from a One4D file: loaded as it is when it has the model's rank and links, grown into
    the model (:func:`grow_one4d_tensors`) when the model is larger or scales its LoRAs otherwise. Returns the file's metadata."""
    source = Path(path).name
    meta = read_metadata(path)
    old = dlc_config_from_metadata(meta, source)
    new = model.config
    if (old.rank, old.alpha, old.link_layers) == (new.rank, new.alpha, new.link_layers):
        return load_one4d_into(model, path)
    check_fits(meta, model.variant, source)
    load_one4d_tensors(model, grow_one4d_tensors(read_safetensors(path), old, model), source)
    return meta
