"""Tensors of a model sharded across processes (FSDP2's DTensors), seen whole.

Under FSDP every process holds a slice of each parameter (and of its optimizer state), so reading a model's
weights is a collective: every process gathers, and only one writes. These helpers are no-ops for ordinary
tensors and single-process runs, so code that saves or restores weights calls them unconditionally.
"""
from __future__ import annotations

import torch
import torch.distributed as dist


def _dtensor_type() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a PyTorch built without distributed support
        return None
    return DTensor


def is_sharded(t: torch.Tensor) -> bool:
    """Whether ``t`` is a slice of a tensor spread across processes (a DTensor)."""
    cls = _dtensor_type()
    return cls is not None and isinstance(t, cls)


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """``t`` whole: a DTensor is gathered from every process (a collective: all must call it in the same
    order); any other tensor is returned as it is."""
    return t.full_tensor() if is_sharded(t) else t


def shard_like(full: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``full`` (the same on every process) cut the way ``like`` is sharded, in ``like``'s dtype and device;
    the inverse of :func:`full_tensor` (a collective for DTensors)."""
    if not is_sharded(like):
        return full.to(like.device, like.dtype)
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(like.device, like.dtype), like.device_mesh, like.placements)


def is_writer() -> bool:
    """Whether this process writes files: the only process, or rank 0 of a distributed run."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
