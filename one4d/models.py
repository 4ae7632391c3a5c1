"""Model folders: one type for every complete One4D model that run, eval, train and the nodes load.

A model folder holds its weight files and a ``model.json`` that says what they are::

    {"format": "one4d-model", "version": 1, "kind": "embedded",
     "files": {"dit": "dit.safetensors", "vae": "vae.safetensors", "one4d": "one4d.safetensors"},
     "text_encoder": {"type": "hash", "length": 48}}

``kind`` names the sampling defaults (:mod:`one4d.defaults`); each component file carries its own
diffusers config in its safetensors metadata (``config``), so the folder builds its models without any
other file. A folder may also name real Wan2.1 files, by absolute path or relative to the folder, as
ComfyUI keeps them (single-file DiT in any supported key style, dtype or GGUF; the Wan 2.1 VAE), with the
umT5 text encoder (:mod:`one4d.umt5`); ``dtype`` sets the DiT's compute dtype (default bf16)::

    {"format": "one4d-model", "version": 1, "kind": "wan2.1-fun-1.3b", "dtype": "bf16",
     "files": {"dit": "/models/diffusion_models/wan2.1_fun_inp_1.3b_bf16.safetensors",
               "vae": "/models/vae/wan_2.1_vae.safetensors", "one4d": "one4d_1.3b.safetensors"},
     "text_encoder": {"type": "umt5", "weights": "/models/text_encoders/umt5_xxl_fp16.safetensors",
                      "tokenizer": "umt5-xxl-tokenizer"}}

The same folder serves ``one4d run``, ``one4d eval`` and ``one4d train``. The shipped embedded model is the folder ``one4d/assets/embedded`` (spec ``"embedded"``); the
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

from .backbone import (
    VAE_PRESETS,
    WAN21,
    DitVariant,
    LatentGeometry,
    build_dit,
    build_vae,
    dit_text_dim,
    load_dit,
    load_vae,
    read_safetensors,
    vae_geometry,
)
from .defaults import ModelDefaults, defaults_for
from .errors import One4DInputError
from .export.atomic import atomic_path
from .text import HashTextEncoder
from .umt5 import UMT5TextEncoder
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


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def is_component(path: Path) -> bool:
    """Whether a file is a component written by this pack (config in its metadata), not a real Wan file."""
    return Path(path).suffix == ".safetensors" and "config" in read_metadata(path)


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
    def open(cls, spec: str | Path = "embedded", require: tuple[str, ...] = COMPONENTS) -> "ModelFolder":
        """``"embedded"`` (the shipped model) or a folder path; missing files of ``require`` are named with the
        fix (training a new model needs only its ``vae`` and ``dit``)."""
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
        missing = [folder.layout["files"][n] for n in require if not folder.file(n).is_file()]
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
        """Latent channels, strides and patch of the folder's VAE + DiT, read from their configs (no weights
        loaded; real Wan files have Wan's)."""
        dit, vae = self.file("dit"), self.file("vae")
        patch = int(read_component_config(dit)["patch_size"][1]) if is_component(dit) else WAN21.patch
        return vae_geometry(read_component_config(vae) if is_component(vae) else VAE_PRESETS["wan2.1-vae"], patch)

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of a real Wan DiT (``dtype`` in model.json; components load as stored)."""
        name = self.layout.get("dtype", "bf16")
        if name not in DTYPES:
            raise One4DInputError(f"dtype '{name}' in {self.path / MODEL_FILE} is unknown; use one of {', '.join(DTYPES)}.")
        return DTYPES[name]

    def load_vae(self) -> AutoencoderKLWan:
        """The folder's VAE (with its latent statistics), frozen, in eval mode."""
        path = self.file("vae")
        return load_vae_component(path) if is_component(path) else load_vae(path)

    def load_dit(self) -> tuple[WanTransformer3DModel, DitVariant]:
        """The folder's base DiT, frozen, in eval mode, with its variant."""
        path = self.file("dit")
        return load_dit_component(path, self.kind) if is_component(path) else load_dit(path, self.dtype)

    @property
    def text_dim(self) -> int:
        """The width of the text the DiT reads (from its config; real Wan files read umT5-XXL's)."""
        dit = self.file("dit")
        return int(read_component_config(dit)["text_dim"]) if is_component(dit) else dit_text_dim(dit)

    def text_encoder(self, variant: DitVariant | None = None, *, text_dim: int | None = None) -> HashTextEncoder | UMT5TextEncoder:
        """The folder's built-in text encoder, for the text width of ``variant`` or ``text_dim`` (default: the
        folder's DiT's)."""
        spec = self.layout["text_encoder"]
        kind = spec.get("type")
        if text_dim is None:
            text_dim = int(variant.config["text_dim"]) if variant is not None else self.text_dim
        if kind == "hash":
            return HashTextEncoder(text_dim, int(spec["length"]))
        if kind == "umt5":
            if not {"weights", "tokenizer"} <= spec.keys():
                raise One4DInputError(f"the umt5 text encoder in {self.path / MODEL_FILE} needs 'weights' (the umT5-XXL "
                                      "safetensors file) and 'tokenizer' (its tokenizer folder).")
            encoder = UMT5TextEncoder(self.path / spec["weights"], self.path / spec["tokenizer"])
            if encoder.dim != text_dim:
                raise One4DInputError(f"the umT5 file is {encoder.dim} wide but the DiT reads {text_dim}-wide text; "
                                      "use the umT5-XXL file that goes with Wan2.1.")
            return encoder
        raise One4DInputError(f"text encoder type '{kind}' in {self.path / MODEL_FILE} is unknown; use 'hash' or 'umt5'.")
