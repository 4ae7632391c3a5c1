"""Build the Wan video DiT and VAE from bundled presets and load single-file checkpoints.

Presets are diffusers configs written out here, so nothing ever reaches a model hub. A checkpoint's
variant is detected from tensor shapes (hidden width, input channels, block count, image cross-attention),
never from its file name, and the model is built from what was detected.

Checkpoint key styles: original Wan / ComfyUI (``blocks.0.self_attn.q.weight``, optionally prefixed with
``model.diffusion_model.``) and diffusers (``blocks.0.attn1.to_q.weight``); conversion uses diffusers'
single-file converters. Dtypes: fp32, bf16, fp16, fp8 e4m3fn/e5m2 and ComfyUI "scaled fp8" (a
``scaled_fp8`` marker plus per-weight ``scale_weight``). Decision: fp8 weights are dequantized (times their
scale, if any) into the compute dtype at load time; with ``keep_fp8=True`` plain (unscaled) fp8 files keep
fp8 storage and are up-cast layer by layer during compute through diffusers' layerwise casting, which
halves weight memory at a small speed cost. Scaled fp8 is always dequantized, since re-quantizing would
lose precision.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKLWan, WanTransformer3DModel
from diffusers.loaders.single_file_utils import (
    convert_wan_transformer_to_diffusers,
    convert_wan_vae_to_diffusers,
)
from safetensors import safe_open
from safetensors.torch import load_file

from .errors import One4DInputError

CLIP_VISION_DIM = 1280  # open-clip ViT-H/14 penultimate features, 257 tokens
UMT5_DIM = 4096  # Wan2.1's text width (umT5-XXL hidden states)


@dataclass(frozen=True)
class LatentGeometry:
    """How pixels map to latents and tokens: the VAE's strides and latent channels, and the DiT's spatial
    patch. Everything downstream (codec, UMC masks, latent shapes, sizes a request may have) reads it from
    here; the Wan2.1 numbers live only in :data:`WAN21`."""

    channels: int
    time_stride: int
    space_stride: int
    patch: int

    @property
    def mask_channels(self) -> int:
        """Wan packs the observed-frame mask of a latent frame's ``time_stride`` pixel frames into channels."""
        return self.time_stride

    @property
    def inp_channels(self) -> int:
        """Input channels of a Fun-InP DiT: ``[noise | mask | cond]``."""
        return 2 * self.channels + self.mask_channels

    @property
    def size_multiple(self) -> int:
        """Heights and widths must be multiples of this (VAE stride x patch)."""
        return self.space_stride * self.patch

    def latent_frames(self, num_frames: int) -> int:
        """Latent frames of ``num_frames`` pixel frames (the causal first frame stands alone)."""
        return (num_frames - 1) // self.time_stride + 1

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
        """``(T_lat, h, w)`` for a video size (checked by :func:`one4d.umc.validate_video_size` first)."""
        return self.latent_frames(num_frames), height // self.space_stride, width // self.space_stride

    def with_patch(self, patch: int) -> "LatentGeometry":
        return LatentGeometry(self.channels, self.time_stride, self.space_stride, patch)


WAN21 = LatentGeometry(channels=16, time_stride=4, space_stride=8, patch=2)  # Wan2.1 VAE + DiT
LATENT_CHANNELS = WAN21.channels
MASK_CHANNELS = WAN21.mask_channels
INP_CHANNELS = WAN21.inp_channels  # 36: [noise 16 | mask 4 | cond 16]


def vae_geometry(config: dict[str, Any], patch: int = WAN21.patch) -> LatentGeometry:
    """The geometry of a diffusers ``AutoencoderKLWan`` config: one 2x spatial step per ``dim_mult`` entry after
    the first (times its ``patch_size``), one 2x temporal step per true ``temperal_downsample``."""
    dim_mult = config.get("dim_mult", [1, 2, 4, 4])
    temporal = config.get("temperal_downsample", [False, True, True])
    space = 2 ** (len(dim_mult) - 1) * int(config.get("patch_size") or 1)
    return LatentGeometry(int(config.get("z_dim", 16)), 2 ** sum(bool(t) for t in temporal), space, patch)


def dit_config(dim: int, heads: int, ffn: int, layers: int, in_ch: int, image: bool, text_dim: int = UMT5_DIM,
               latent_channels: int = WAN21.channels, patch: int = WAN21.patch) -> dict[str, Any]:
    """A diffusers ``WanTransformer3DModel`` config (Wan2.1 conventions unless told otherwise)."""
    return {
        "patch_size": [1, patch, patch],
        "num_attention_heads": heads,
        "attention_head_dim": dim // heads,
        "in_channels": in_ch,
        "out_channels": latent_channels,
        "text_dim": text_dim,
        "freq_dim": 256,
        "ffn_dim": ffn,
        "num_layers": layers,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "eps": 1e-6,
        "image_dim": CLIP_VISION_DIM if image and text_dim == UMT5_DIM else (text_dim if image else None),
        "added_kv_proj_dim": dim if image else None,
        "rope_max_seq_len": 1024,
    }


# name -> diffusers WanTransformer3DModel config
DIT_PRESETS: dict[str, dict[str, Any]] = {
    "wan2.1-fun-v1.1-14b-inp": dit_config(5120, 40, 13824, 40, INP_CHANNELS, image=True),
    "wan2.1-fun-v1.1-14b-inp-noclip": dit_config(5120, 40, 13824, 40, INP_CHANNELS, image=False),
    "wan2.1-fun-v1.1-1.3b-inp": dit_config(1536, 12, 8960, 30, INP_CHANNELS, image=True),
    "wan2.1-fun-v1.1-1.3b-inp-noclip": dit_config(1536, 12, 8960, 30, INP_CHANNELS, image=False),
    "wan2.1-t2v-14b": dit_config(5120, 40, 13824, 40, LATENT_CHANNELS, image=False),
    "wan2.1-t2v-1.3b": dit_config(1536, 12, 8960, 30, LATENT_CHANNELS, image=False),
    # Tiny shapes for tests and the embedded model (text context stays 512 tokens long, as in Wan).
    "tiny-inp": dit_config(32, 2, 64, 2, INP_CHANNELS, image=False, text_dim=32),
    "tiny-inp-clip": dit_config(32, 2, 64, 2, INP_CHANNELS, image=True, text_dim=32),
    "tiny-t2v": dit_config(32, 2, 64, 2, LATENT_CHANNELS, image=False, text_dim=32),
}

# name -> diffusers AutoencoderKLWan config (the 2.1 VAE; "tiny" is a narrow one for tests)
VAE_PRESETS: dict[str, dict[str, Any]] = {
    "wan2.1-vae": {"base_dim": 96, "z_dim": 16},
    "tiny-vae": {"base_dim": 8, "z_dim": 16, "latents_mean": [0.0] * 16, "latents_std": [1.0] * 16},
}


@dataclass(frozen=True)
class DitVariant:
    """What a DiT checkpoint is, read from its tensor shapes."""

    config: dict[str, Any]
    preset: str | None  # the matching preset name, if any

    @property
    def has_image_attention(self) -> bool:
        return self.config["added_kv_proj_dim"] is not None

    @property
    def accepts_conditioning(self) -> bool:
        """Whether the input has the InP channels [noise | mask | cond] needed for frame conditioning."""
        return self.config["in_channels"] > self.config["out_channels"]

    @property
    def patch(self) -> int:
        return int(self.config["patch_size"][1])

    @property
    def hidden_size(self) -> int:
        return self.config["num_attention_heads"] * self.config["attention_head_dim"]


def build_dit(config: dict[str, Any] | str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> WanTransformer3DModel:
    """Instantiate a Wan DiT from a preset name or config (random weights; ``device='meta'`` allocates nothing)."""
    cfg = DIT_PRESETS[config] if isinstance(config, str) else config
    with torch.device(device):
        model = WanTransformer3DModel(**cfg)
    return model.to(dtype=dtype) if device != "meta" and dtype != torch.float32 else model


def build_vae(config: dict[str, Any] | str, dtype: torch.dtype = torch.float32) -> AutoencoderKLWan:
    """Instantiate a Wan VAE from a preset name or config."""
    cfg = VAE_PRESETS[config] if isinstance(config, str) else config
    vae = AutoencoderKLWan(**cfg)
    return vae.to(dtype=dtype) if dtype != torch.float32 else vae


# ---------------------------------------------------------------------------------------------
# Single-file checkpoints
# ---------------------------------------------------------------------------------------------

_ORIGINAL_MARKERS = ("head.modulation", "patch_embedding.weight")
_FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Read every tensor of a safetensors file, with an error naming the file when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise One4DInputError(f"checkpoint file '{p}' does not exist; put it in the model folder or fix the path.")
    try:
        return load_file(str(p))
    except Exception as exc:  # safetensors raises its own error types for truncated/garbage files
        raise One4DInputError(
            f"checkpoint file '{p.name}' is not a readable safetensors file ({exc}); it may be truncated or in "
            "another format: download it again, or convert .pt/.ckpt files to safetensors."
        ) from exc


def _strip_prefix(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in ("model.diffusion_model.", "diffusion_model.", "model."):
        if any(k.startswith(prefix) for k in sd) and all(k.startswith(prefix) or k in ("scaled_fp8",) for k in sd):
            return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in sd.items()}
    return sd


def dequantize_fp8(sd: dict[str, torch.Tensor], dtype: torch.dtype, keep_fp8: bool = False) -> dict[str, torch.Tensor]:
    """Turn fp8 / ComfyUI scaled-fp8 weights into ``dtype`` (see module docstring for the policy).

    ``scale_weight`` / ``scale_input`` entries and the ``scaled_fp8`` marker are consumed.
    """
    marker = lambda k: k == "scaled_fp8" or k.endswith(".scaled_fp8")  # noqa: E731
    scaled = any(marker(k) or k.endswith(".scale_weight") for k in sd)
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if marker(key) or key.endswith(".scale_weight") or key.endswith(".scale_input"):
            continue
        if value.dtype in _FP8:
            scale_key = key[: -len(".weight")] + ".scale_weight" if key.endswith(".weight") else None
            if scale_key is not None and scale_key in sd:
                value = value.to(torch.float32) * sd[scale_key].to(torch.float32)
                out[key] = value.to(dtype)
            elif keep_fp8 and not scaled:
                out[key] = value
            else:
                out[key] = value.to(torch.float32).to(dtype)
        elif value.is_floating_point():
            out[key] = value.to(dtype)
        else:
            out[key] = value
    return out


def to_diffusers_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an original/ComfyUI-style Wan DiT state dict to diffusers key names (diffusers' converter)."""
    sd = _strip_prefix(sd)
    if any(k.startswith(m) or k == m for k in sd for m in _ORIGINAL_MARKERS) and "proj_out.weight" not in sd:
        return convert_wan_transformer_to_diffusers(dict(sd))
    return sd


def detect_dit_variant(sd: dict[str, torch.Tensor], source: str = "checkpoint") -> DitVariant:
    """Read the DiT shape (width, heads, FFN, depth, input channels, image attention) from diffusers-keyed weights."""
    need = ["patch_embedding.weight", "blocks.0.ffn.net.0.proj.weight", "condition_embedder.text_embedder.linear_1.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise One4DInputError(
            f"'{source}' is not a Wan2.1 video DiT: it lacks {missing[0]} (expected Wan DiT weights such as "
            "'blocks.0.self_attn.q.weight' or 'blocks.0.attn1.to_q.weight'). Pick a Wan2.1 / Wan2.1-Fun file from "
            "models/diffusion_models."
        )
    pe = sd["patch_embedding.weight"]
    dim, in_ch = int(pe.shape[0]), int(pe.shape[1])
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    ffn = int(sd["blocks.0.ffn.net.0.proj.weight"].shape[0])
    text_dim = int(sd["condition_embedder.text_embedder.linear_1.weight"].shape[1])
    image = "blocks.0.attn2.add_k_proj.weight" in sd
    head_dim = 128 if dim % 128 == 0 and dim >= 128 else 16
    cfg = dit_config(dim, dim // head_dim, ffn, layers, in_ch, image=image, text_dim=text_dim)
    if image and "condition_embedder.image_embedder.ff.net.0.proj.weight" in sd:
        cfg["image_dim"] = int(sd["condition_embedder.image_embedder.ff.net.0.proj.weight"].shape[1])
    if in_ch not in (LATENT_CHANNELS, INP_CHANNELS):
        raise One4DInputError(
            f"'{source}' has {in_ch} input channels; One4D needs a Wan2.1 text-to-video (16) or InP/I2V (36) DiT. "
            "Wan2.2 and VACE files are not supported."
        )
    preset = next((name for name, p in DIT_PRESETS.items() if p == cfg), None)
    return DitVariant(config=cfg, preset=preset)


def _aligned(t: torch.Tensor) -> torch.Tensor:
    """A 64-byte aligned tensor: kernels take other code paths on tensors at odd file offsets, so outputs
    would differ in the last bits from a model built in memory."""
    return t if t.device.type == "meta" or t.data_ptr() % 64 == 0 else t.clone()


def load_dit_state_dict(
    model: WanTransformer3DModel, sd: dict[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Load diffusers-keyed weights into ``model``; mismatches name the file, the tensor and the expectation."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected and not k.startswith("norm_added_q")]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise One4DInputError(
            f"'{source}' does not match the Wan DiT it was detected as ({detail}); the file may be truncated, "
            "or be a LoRA / another model type: load a full Wan2.1 DiT checkpoint."
        )
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise One4DInputError(
                f"'{source}': tensor {k} has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}; the file is "
                "for another model size or is corrupt."
            )
    model.load_state_dict({k: _aligned(sd[k]) for k in expected}, strict=True, assign=True)


def load_dit(
    path: str | Path, dtype: torch.dtype = torch.bfloat16, keep_fp8: bool = False, device: str = "cpu",
    compute_device: str | torch.device | None = None,
) -> tuple[WanTransformer3DModel, DitVariant]:
    """Load a single-file Wan DiT (safetensors in any supported key style and dtype, or GGUF: see
    :mod:`one4d.gguf_weights`) and return it with its detected variant. Kept fp8 weights are up-cast block
    by block instead when ``compute_device`` (default ``device``) cannot hold fp8 (:mod:`one4d.precision`)."""
    from . import precision
    from .gguf_weights import read_gguf

    name = Path(path).name
    sd = read_gguf(path, dtype) if Path(path).suffix.lower() == ".gguf" else read_safetensors(path)
    sd = to_diffusers_keys(dequantize_fp8(sd, dtype, keep_fp8=keep_fp8))
    variant = detect_dit_variant(sd, source=name)
    with init_empty_weights():  # parameters on meta, buffers (rotary tables) real
        model = WanTransformer3DModel(**variant.config)
    load_dit_state_dict(model, sd, source=name)
    fp8 = next((v.dtype for v in sd.values() if v.dtype in _FP8), None)
    del sd  # the model holds the weights now, so an up-cast frees each fp8 tensor as it goes
    if fp8 is not None and not precision.upcast_if_unsupported(model, name, compute_device or device, dtype):
        model.enable_layerwise_casting(storage_dtype=fp8, compute_dtype=dtype)
    model.eval().requires_grad_(False)
    return model.to(device), variant


def dit_text_dim(path: str | Path) -> int:
    """The text width a single-file DiT reads, from its safetensors header (no weights loaded); GGUF and
    files without a text embedding are taken for Wan2.1's umT5-XXL width."""
    if Path(path).suffix.lower() != ".safetensors":
        return UMT5_DIM
    with safe_open(str(path), framework="pt") as f:
        key = next((k for k in f.keys() if k.endswith(("text_embedding.0.weight", "text_embedder.linear_1.weight"))), None)
        return int(f.get_slice(key).get_shape()[1]) if key else UMT5_DIM


def load_vae(path: str | Path, dtype: torch.dtype = torch.float32) -> AutoencoderKLWan:
    """Load a single-file Wan2.1 VAE (original or diffusers keys), with the base width read from its shapes."""
    name = Path(path).name
    sd = _strip_prefix(read_safetensors(path))
    if "decoder.middle.0.residual.0.gamma" in sd:
        sd = convert_wan_vae_to_diffusers(dict(sd))
    if "encoder.conv_in.weight" not in sd:
        raise One4DInputError(
            f"'{name}' is not a Wan2.1 VAE (no encoder.conv1 / encoder.conv_in weight); pick "
            "wan_2.1_vae.safetensors (Wan2.2's VAE is not supported)."
        )
    base_dim = int(sd["encoder.conv_in.weight"].shape[0])
    z2 = int(sd["encoder.conv_out.weight"].shape[0])
    if z2 != 2 * LATENT_CHANNELS:
        raise One4DInputError(f"'{name}' has {z2 // 2} latent channels; One4D needs the 16-channel Wan2.1 VAE.")
    preset = "wan2.1-vae" if base_dim == 96 else None
    cfg = dict(VAE_PRESETS[preset]) if preset else {"base_dim": base_dim, "z_dim": LATENT_CHANNELS}
    with init_empty_weights():
        vae = AutoencoderKLWan(**cfg)
    expected = vae.state_dict()
    bad = [k for k in expected if k not in sd or tuple(sd[k].shape) != tuple(expected[k].shape)]
    if bad:
        raise One4DInputError(f"'{name}' does not match the Wan2.1 VAE layout (first mismatch: {bad[0]}); the file may be truncated.")
    vae.load_state_dict({k: _aligned(sd[k].to(dtype)) for k in expected}, strict=True, assign=True)
    return vae.eval().requires_grad_(False)
