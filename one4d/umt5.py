"""The umT5-XXL text encoder of Wan2.1, outside ComfyUI: the file ComfyUI users keep in
``models/text_encoders`` (``umt5_xxl_fp16.safetensors``, ``umt5_xxl_fp8_e4m3fn_scaled.safetensors``), run
through transformers' ``UMT5EncoderModel`` (the optional ``train`` extra).

The encoder's shape (width, heads, layers, FFN width, vocabulary, relative-position buckets) is read from the
file's tensors, so the real 4096-wide model and tiny test files load the same way; fp8 and ComfyUI's scaled
fp8 are dequantized like DiT weights (:func:`one4d.backbone.dequantize_fp8`). The tokenizer is a Hugging
Face tokenizer folder (``tokenizer.json``; e.g. the ``google/umt5-xxl`` tokenizer that Wan ships) given by
path: nothing is downloaded. Text is encoded as Wan's pipelines do: whitespace-cleaned, tokenized with the
end token, at most 512 tokens, and the hidden states of the real tokens only (padding is added later with
zeros by :func:`one4d.text.pad_text`).
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from .backbone import dequantize_fp8, read_safetensors
from .errors import One4DInputError

MAX_TOKENS = 512
_BLOCK = re.compile(r"^encoder\.block\.(\d+)\.")


def _transformers():
    try:
        import transformers
    except ImportError:
        raise One4DInputError("the umT5 text encoder needs transformers: pip install 'comfyui-one4d[train]'.") from None
    return transformers


def umt5_config(sd: dict[str, torch.Tensor]):
    """A ``UMT5Config`` read from an encoder state dict's shapes (see module docstring)."""
    t = _transformers()
    need = ("shared.weight", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
            "encoder.block.0.layer.1.DenseReluDense.wi_0.weight", "encoder.block.0.layer.0.SelfAttention.q.weight")
    missing = [k for k in need if k not in sd]
    if missing:
        raise One4DInputError(f"this file is not a umT5 encoder (no {missing[0]}); pick umt5_xxl_fp16.safetensors "
                              "or umt5_xxl_fp8_e4m3fn_scaled.safetensors from models/text_encoders.")
    vocab, width = sd["shared.weight"].shape
    buckets, heads = sd[need[1]].shape
    layers = 1 + max(int(m.group(1)) for k in sd if (m := _BLOCK.match(k)))
    inner = sd[need[3]].shape[0]
    return t.UMT5Config(vocab_size=int(vocab), d_model=int(width), d_kv=int(inner) // int(heads), d_ff=int(sd[need[2]].shape[0]),
                        num_layers=layers, num_heads=int(heads), relative_attention_num_buckets=int(buckets),
                        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False)


class UMT5TextEncoder:
    """``encoder(prompt) -> [1, tokens, width]``: the umT5 hidden states of a prompt's real tokens."""

    def __init__(self, weights: str | Path, tokenizer: str | Path, dtype: torch.dtype = torch.bfloat16, device: str = "cpu"):
        t = _transformers()
        sd = dequantize_fp8({k: v for k, v in read_safetensors(weights).items() if k != "spiece_model"}, dtype)
        config = umt5_config(sd)
        self.model = t.UMT5EncoderModel(config).to(dtype)
        sd.setdefault("encoder.embed_tokens.weight", sd["shared.weight"])
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        if missing or unexpected:
            bad = (missing or unexpected)[0]
            raise One4DInputError(f"'{Path(weights).name}' does not match a umT5 encoder ({'missing' if missing else 'unexpected'} "
                                  f"key {bad}); the file may be truncated or of another model.")
        self.model.eval().requires_grad_(False).to(device)
        folder = Path(tokenizer)
        if not (folder / "tokenizer.json").is_file():
            raise One4DInputError(f"umT5 tokenizer '{folder}' has no tokenizer.json; give the folder of the google/umt5-xxl "
                                  "tokenizer (Wan2.1's repository ships it as google/umt5-xxl/).")
        self.tokenizer = t.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.dim = config.d_model
        self.length = MAX_TOKENS

    @torch.no_grad()
    def __call__(self, prompt: str) -> torch.Tensor:
        text = re.sub(r"\s+", " ", prompt).strip()
        ids = self.tokenizer(text, max_length=MAX_TOKENS, truncation=True, add_special_tokens=True, return_tensors="pt").input_ids
        device = next(self.model.parameters()).device
        hidden = self.model(input_ids=ids.to(device)).last_hidden_state
        return hidden.float().cpu()
