"""Wan2.1 DiT files in GGUF, the format ComfyUI-GGUF users keep (e.g. ``wan2.1-i2v-14b-480p-Q8_0.gguf``).

Such a file holds the original Wan key names (``blocks.0.self_attn.q.weight``; a ``model.diffusion_model.``
prefix is tolerated too), most 2-D weights quantized (Q8_0, Q5_K, Q4_K, ...) and small tensors in
F16/F32. GGUF tensors have at most four dimensions, so ComfyUI-GGUF's converter stores reshaped tensors
(the 5-D patch embedding; tensors whose rows it regrouped by 256 to quantize them) with their real
shape in the metadata key ``comfy.gguf.orig_shape.<tensor name>``.

Decision: every tensor is read with the ``gguf`` package's own :class:`gguf.GGUFReader` (a memory map)
and dequantized with its ``gguf.quants.dequantize`` into the compute dtype at load, one tensor at a time.
The DiT then runs like one loaded from safetensors (``weight_storage = fp8_e4m3fn`` still halves its
memory): a GGUF file saves disk and download, not memory or time per step. ``gguf`` is an optional
dependency (``pip install gguf``, the ``gguf`` extra); without it a GGUF file gets an error that says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import One4DInputError

INSTALL_HINT = "pip install gguf (into ComfyUI's Python, e.g. python -m pip install gguf; ComfyUI-GGUF needs it too)"
ORIG_SHAPE_KEY = "comfy.gguf.orig_shape."
ARCHITECTURES = ("wan",)  # general.architecture of Wan DiT files written by ComfyUI-GGUF's converter


def _gguf():
    try:
        import gguf
    except ImportError:
        raise One4DInputError(f"reading GGUF files needs the 'gguf' Python package, which is not installed: {INSTALL_HINT}.") from None
    return gguf


def _field_value(field):
    """A metadata field's value: a string, a number, or a list of numbers."""
    from gguf import GGUFValueType

    values = [field.parts[i] for i in field.data]
    if field.types and field.types[-1] == GGUFValueType.STRING:
        strings = [bytes(v).decode("utf-8") for v in values]
        return strings if field.types[0] == GGUFValueType.ARRAY else strings[0]
    numbers = [v.tolist()[0] for v in values]
    return numbers if field.types and field.types[0] == GGUFValueType.ARRAY else numbers[0]


def read_gguf(path: str | Path, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    """Every tensor of a GGUF checkpoint, dequantized to ``dtype`` in its original shape."""
    p = Path(path)
    if not p.is_file():
        raise One4DInputError(f"checkpoint file '{p}' does not exist; put it in the model folder or fix the path.")
    gguf = _gguf()
    try:
        reader = gguf.GGUFReader(str(p))
    except Exception as exc:  # bad magic, truncated header, ...
        raise One4DInputError(f"'{p.name}' is not a readable GGUF file ({exc}); it may be truncated: download it again.") from exc
    arch_field = reader.get_field("general.architecture")
    arch = _field_value(arch_field) if arch_field is not None else None
    if arch is not None and arch not in ARCHITECTURES:
        raise One4DInputError(f"'{p.name}' is a GGUF file of a '{arch}' model, not of a Wan2.1 DiT; pick a Wan2.1 / "
                              "Wan2.1-Fun GGUF file (general.architecture 'wan').")
    out: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        try:
            values = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        except NotImplementedError:
            raise One4DInputError(f"'{p.name}': tensor {tensor.name} is stored as {tensor.tensor_type.name}, which this "
                                  "version of the gguf package cannot dequantize; update it (pip install -U gguf).") from None
        shape_field = reader.get_field(ORIG_SHAPE_KEY + tensor.name)
        shape = tuple(int(d) for d in _field_value(shape_field)) if shape_field is not None else values.shape
        if int(np.prod(shape)) != values.size:
            raise One4DInputError(f"'{p.name}': tensor {tensor.name} has {values.size} values, but its recorded shape is "
                                  f"{shape}; the file is corrupt.")
        values = values.reshape(shape)
        if not values.flags.writeable:  # F32 tensors come back as views of the read-only memory map
            values = values.copy()
        out[tensor.name] = torch.from_numpy(values.astype(np.float32, copy=False)).to(dtype)
    return out
