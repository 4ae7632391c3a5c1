"""Model folders: one type for every complete One4D model that run, eval, train and the nodes load.

A model folder holds its weight files and a ``model.json`` that says what they are::

    {"format": "one4d-model", "version": 1, "kind": "embedded",
     "files": {"dit": "dit.safetensors", "vae": "vae.safetensors", "one4d": "one4d.safetensors"},
     "text_encoder": {"type": "hash", "length": 48}}

``kind`` names the sampling defaults (:mod:`one4d.defaults`); each component file carries its own
diffusers config in its safetensors metadata (``config``), so the folder builds its models without any
other file. The shipped embedded model is the folder ``one4d/assets/embedded`` (spec ``"embedded"``); the
``--work`` folder of ``one4d train`` is another. A folder without ``model.json`` (written by earlier
versions of the trainer) is read with the embedded layout above.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from safetensors.torch import save_file

from .backbone import DitVariant, LatentGeometry, build_dit, build_vae, read_safetensors, vae_geometry
from .defaults import ModelDefaults, defaults_for
from .errors import One4DInputError
from .export.atomic import atomic_path
from .text import HashTextEncoder
from .weights import read_metadata

EMBEDDED_DIR = Path(__file__).parent / "assets" / "embedded"
MODEL_FILE = "model.json"
FORMAT = "one4d-model"
COMPONENTS = ("vae", "dit", "one4d")
EMBEDDED_LAYOUT: dict[str, Any] = {
    "format": FORMAT,
    "version": 1,
    "kind": "embedded",
    "files": {name: f"{name}.safetensors" for name in COMPONENTS},
    "text_encoder": {"type": "hash", "length": 48},
}


def save_component(state: dict[str, torch.Tensor], config: dict, path: Path, extra: dict[str, str] | None = None) -> None:
    """Write one component's weights with its config as safetensors metadata, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(tmp),
                  metadata={"config": json.dumps(config), **(extra or {})})


def read_component_config(path: Path) -> dict:
    """The diffusers config stored in a component file's metadata."""
    meta = read_metadata(path)
    if "config" not in meta:
        raise One4DInputError(f"'{Path(path).name}' has no config metadata; it is not a component of a One4D model folder.")
    return json.loads(meta["config"])


def load_vae_component(path: Path) -> AutoencoderKLWan:
    """A VAE component file (weights + config metadata), frozen, in eval mode."""
    vae = build_vae(read_component_config(path))
    vae.load_state_dict(read_safetensors(path))
    return vae.eval().requires_grad_(False)


def load_dit_component(path: Path, kind: str = "embedded") -> tuple[WanTransformer3DModel, DitVariant]:
    """A DiT component file (weights + config metadata), frozen, in eval mode, with its variant."""
    cfg = read_component_config(path)
    dit = build_dit(cfg)
    dit.load_state_dict(read_safetensors(path))
    return dit.eval().requires_grad_(False), DitVariant(cfg, f"one4d-{kind}")


def write_model_config(folder: Path, layout: dict[str, Any]) -> Path:
    """Write a folder's ``model.json`` (atomically)."""
    path = Path(folder) / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(layout, indent=1) + "\n")
    return path


@dataclass(frozen=True)
class ModelFolder:
    """A complete model on disk: its files, its kind and how it encodes text (see module docstring)."""

    path: Path
    layout: dict[str, Any] = field(default_factory=lambda: dict(EMBEDDED_LAYOUT))

    @classmethod
    def open(cls, spec: str | Path = "embedded") -> "ModelFolder":
        """``"embedded"`` (the shipped model) or a folder path; missing files are named with the fix."""
        if str(spec) == "embedded":
            path = EMBEDDED_DIR
        else:
            path = Path(spec)
            if not path.is_dir():
                raise One4DInputError(
                    f"model '{spec}' is not 'embedded' nor a folder; give the --work folder of `one4d train`, or 'embedded'.")
        config = path / MODEL_FILE
        layout = json.loads(config.read_text()) if config.is_file() else dict(EMBEDDED_LAYOUT)
        if layout.get("format") != FORMAT:
            raise One4DInputError(f"'{config}' is not a One4D model description (format '{layout.get('format')}', expected '{FORMAT}').")
        folder = cls(path, layout)
        missing = [folder.layout["files"][n] for n in COMPONENTS if not folder.file(n).is_file()]
        if missing:
            fix = "reinstall the pack" if str(spec) == "embedded" else "give the --work folder of `one4d train` after its one4d stage, or 'embedded'"
            raise One4DInputError(f"model '{spec}' lacks files (missing: {', '.join(missing)}); {fix}.")
        return folder

    @property
    def kind(self) -> str:
        return str(self.layout["kind"])

    @property
    def defaults(self) -> ModelDefaults:
        return defaults_for(self.kind)

    def file(self, component: str) -> Path:
        """The path of one component file (``dit``, ``vae`` or ``one4d``)."""
        return self.path / self.layout["files"][component]

    @property
    def geometry(self) -> LatentGeometry:
        """Latent channels, strides and patch of the folder's VAE + DiT, read from their configs (no weights loaded)."""
        patch = int(read_component_config(self.file("dit"))["patch_size"][1])
        return vae_geometry(read_component_config(self.file("vae")), patch)

    def load_vae(self) -> AutoencoderKLWan:
        """The folder's VAE (with its latent statistics), frozen, in eval mode."""
        return load_vae_component(self.file("vae"))

    def load_dit(self) -> tuple[WanTransformer3DModel, DitVariant]:
        """The folder's base DiT, frozen, in eval mode, with its variant."""
        return load_dit_component(self.file("dit"), self.kind)

    def text_encoder(self, variant: DitVariant) -> HashTextEncoder:
        """The folder's built-in text encoder for a DiT of this variant's text width."""
        spec = self.layout["text_encoder"]
        if spec.get("type") != "hash":
            raise One4DInputError(f"text encoder type '{spec.get('type')}' in {self.path / MODEL_FILE} is unknown; use 'hash'.")
        return HashTextEncoder(int(variant.config["text_dim"]), int(spec["length"]))
