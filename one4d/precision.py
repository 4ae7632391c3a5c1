"""Precision where a device falls short: fp8 weights on devices that cannot hold them, and bf16 training on CPUs
whose 3D convolution gradients go wrong.

An fp8 DiT file (or ``weight_storage = fp8_e4m3fn``) keeps its weights in float8 e4m3fn and up-casts
them layer by layer to the compute dtype while it runs (diffusers' layerwise casting, see
:mod:`one4d.backbone`). That needs no fp8 *arithmetic*, only fp8 tensors on the compute device and an
element-wise cast: CUDA GPUs of every generation and the CPU have both (older GPUs lack fp8 matrix
products, which One4D never uses). Apple's MPS backend has no float8 dtypes at all, and a PyTorch built
without them has none anywhere; moving such a model to that device would crash.

Decision: where :func:`fp8_storage_supported` says no, the fp8 weights are up-cast to the compute dtype
at load, one transformer block at a time (the peak is the fp8 model plus one block in the compute
dtype, never two full copies), and one line says so and what it costs in memory. Outputs equal those of
layerwise casting (the same fp8 values, up-cast once instead of at every step).

bf16 on the CPU: torch 2.13's oneDNN kernel for the weight gradient of a bf16 Conv3d is wrong on CPUs with AMX for
some shapes: NaN gradients (32 -> 32 channels, 3x3x3, over 64 x 64 frames; 128 -> 64 over 32 x 32 on one thread) or a
corrupted heap that aborts the process (64 -> 32, 1x1x1 or 3x3x3, over 56 x 56 and 64 x 64 frames), depending on the
shape and the thread count. The recipe's 32 x 32 crops of the embedded VAEs trained for hours in bf16 without one;
whole 64 x 64 frames abort within a step. Decision: VAE training runs a Conv3d in float32 under CPU autocast when its
frames are larger than 32 x 32 (:func:`conv3d_in_fp32_above`); smaller frames keep bf16's speed (2.0 s against 3.0 s
for a batch-4, 17-frame, 32 x 32 step on one thread). A shape that still goes wrong is caught by the trainer's check of
the gradient norm. Switching oneDNN off instead made a step 80x slower.
"""
from __future__ import annotations

import functools
import logging
import types

import torch
from torch import nn

log = logging.getLogger("one4d")

FP8_DTYPES = tuple(getattr(torch, name) for name in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, name))


@functools.lru_cache(maxsize=None)
def _probe(device: str) -> bool:
    if not FP8_DTYPES:
        return False
    try:
        x = torch.ones(4, device=device).to(torch.float8_e4m3fn)
        return bool(x.to(torch.float32).sum().item() == 4.0)
    except Exception:  # e.g. "MPS does not support Float8_e4m3fn": the device cannot hold fp8 tensors
        return False


def fp8_storage_supported(device: torch.device | str) -> bool:
    """Whether ``device`` can hold float8 e4m3fn weights and cast them to the compute dtype (probed once per
    device with a 4-element tensor). False on MPS and on PyTorch builds without float8."""
    dev = torch.device(device)
    if dev.type == "mps":
        return False  # no float8 dtypes in the MPS backend (and probing it would allocate on the GPU)
    return _probe(str(dev))


def has_fp8(module: nn.Module) -> bool:
    return any(p.dtype in FP8_DTYPES for p in module.parameters())


def upcast_fp8(model: nn.Module, dtype: torch.dtype, blocks: nn.ModuleList | None = None) -> int:
    """Convert every fp8 parameter of ``model`` to ``dtype`` in place, block by block; returns the bytes the
    weights take afterwards. ``blocks`` (default ``model.blocks``) go one at a time, then the rest."""
    groups = list(blocks if blocks is not None else getattr(model, "blocks", [])) + [model]
    for group in groups:
        for param in group.parameters():
            if param.dtype in FP8_DTYPES:
                param.data = param.data.to(dtype)
    return sum(p.numel() * p.element_size() for p in model.parameters())


def fp8_notice(name: str, device: torch.device | str, dtype: torch.dtype, fp8_bytes: int, upcast_bytes: int) -> str:
    """The one-line notice of an up-cast: what, why, and the memory it costs."""
    gb = lambda n: f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"  # noqa: E731
    return (f"One4D: {torch.device(device).type} cannot hold fp8 weights; the fp8 weights of {name} were up-cast to "
            f"{str(dtype).replace('torch.', '')} block by block (weights {gb(fp8_bytes)} -> {gb(upcast_bytes)}).")


def upcast_if_unsupported(model: nn.Module, name: str, device: torch.device | str, dtype: torch.dtype) -> bool:
    """Up-cast ``model``'s fp8 weights (with the notice) when ``device`` cannot hold them; True if it did."""
    if not has_fp8(model) or fp8_storage_supported(device):
        return False
    before = sum(p.numel() * p.element_size() for p in model.parameters())
    after = upcast_fp8(model, dtype)
    log.warning(fp8_notice(name, device, dtype, before, after))
    return True


def store_in_fp8(model: nn.Module, compute_dtype: torch.dtype, device: torch.device | str) -> None:
    """Keep a frozen model's weights in float8 e4m3fn, up-cast layer by layer to ``compute_dtype`` as it
    runs, backward included (diffusers' layerwise casting): half the memory of bf16 for the base of a
    training run. Values are rounded to fp8 once; an fp8 file's own values are kept exactly. Refused with
    the fix on a device that cannot hold fp8."""
    if not fp8_storage_supported(device):
        from .errors import One4DInputError

        raise One4DInputError(f"{torch.device(device).type} cannot hold fp8 weights; train with --base-storage "
                              "compute (the base in its compute dtype) or on a CUDA GPU.")
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute_dtype)


def _conv3d_guarded_forward(self: nn.Conv3d, x: torch.Tensor, *args, **kwargs):
    """The layer's own forward, in float32 when CPU autocast is on and the frames exceed the guard's size."""
    forward = type(self).forward
    if not torch.is_autocast_enabled("cpu") or x.shape[-1] * x.shape[-2] <= self.fp32_above_pixels:
        return forward(self, x, *args, **kwargs)
    up = lambda t: t.float() if torch.is_tensor(t) and t.is_floating_point() else t  # noqa: E731
    with torch.autocast("cpu", enabled=False):
        return forward(self, up(x), *map(up, args), **{k: up(v) for k, v in kwargs.items()})


def conv3d_in_fp32_above(model: nn.Module, side: int = 32) -> int:
    """Make every ``Conv3d`` of ``model`` compute in float32 while CPU autocast is on and its input frames have more
    than ``side`` x ``side`` pixels (the bf16 kernel bug in the module docstring); otherwise they run as before.
    A bound method, so a deep copy of the model (e.g. a frozen reference) keeps the guard on its own layers.
    Returns how many layers it wraps."""
    layers = [m for m in model.modules() if isinstance(m, nn.Conv3d)]
    for m in layers:
        m.fp32_above_pixels = side * side
        m.forward = types.MethodType(_conv3d_guarded_forward, m)
    return len(layers)
