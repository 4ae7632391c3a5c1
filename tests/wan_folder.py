"""A tiny model folder of real-layout Wan files (original-key DiT, diffusers-key VAE, ComfyUI-style umT5 and a
tokenizer folder) for tests of the CLI, the pipeline and the trainer on real backbones; generated, never
downloaded. Needs transformers (the pack's ``train`` extra)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from ckpt_factory import original_state_dict
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from one4d.backbone import build_dit, build_vae, dit_config, load_dit
from one4d.dlc import DLCConfig, One4DModel
from one4d.weights import save_one4d

WORDS = ["<pad>", "</s>", "<unk>", "a", "room", "with", "red", "sphere", "camera", "moves"]


def write_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer.json that adds the end token, as umT5's does."""
    folder.mkdir()
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tok.save(str(folder / "tokenizer.json"))
    return folder


def write_umt5(path: Path, width: int = 32, fp8: bool = False):
    """A tiny umT5 encoder file in ComfyUI's key layout; returns the transformers model it was taken from."""
    torch.manual_seed(0)
    cfg = transformers.UMT5Config(vocab_size=len(WORDS), d_model=width, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
                                  feed_forward_proj="gated-gelu", is_encoder_decoder=False)
    model = transformers.UMT5EncoderModel(cfg).eval()
    sd = {k: v for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}  # ComfyUI keeps shared.weight only
    if fp8:
        sd = {k: v.to(torch.float8_e4m3fn) if v.ndim == 2 and "block" in k else v for k, v in sd.items()}
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return model


def write_wan_model_folder(tmp_path: Path, width: int = 32, one4d: bool = True) -> Path:
    """A model folder naming real-layout files: original-key DiT, diffusers-key VAE, ComfyUI-style umT5; with
    One4D weights (rank 4) unless ``one4d`` is false (a folder to train them for)."""
    files = tmp_path / "comfy_models"
    files.mkdir()
    torch.manual_seed(1)
    cfg = dit_config(32, 2, 64, 2, 36, image=False, text_dim=32)
    dit = build_dit(cfg)
    save_file({k: v.contiguous() for k, v in original_state_dict(dit.state_dict(), "model.diffusion_model.").items()},
              str(files / "wan_tiny_inp.safetensors"))
    save_file(build_vae({"base_dim": 8, "z_dim": 16}).state_dict(), str(files / "wan_vae_tiny.safetensors"))
    write_umt5(files / "umt5_tiny.safetensors", width)
    write_tokenizer(files / "tok")
    folder = tmp_path / "model"
    folder.mkdir()
    if one4d:
        loaded, variant = load_dit(files / "wan_tiny_inp.safetensors", torch.float32)
        save_one4d(One4DModel(loaded, variant, DLCConfig(rank=4)), folder / "one4d.safetensors")
    (folder / "model.json").write_text(json.dumps({
        "format": "one4d-model", "version": 1, "kind": "wan2.1-fun-1.3b", "dtype": "fp32",
        "files": {"dit": str(files / "wan_tiny_inp.safetensors"), "vae": "../comfy_models/wan_vae_tiny.safetensors",
                  "one4d": "one4d.safetensors"},
        "text_encoder": {"type": "umt5", "weights": str(files / "umt5_tiny.safetensors"), "tokenizer": str(files / "tok")},
    }))
    return folder


