"""Block swapping for GPUs too small for the whole DiT ("block_swap" memory mode of the loader).

The transformer blocks stay on the offload device (CPU RAM); each block is moved to the GPU by a forward
pre-hook just before it runs and back right after, so only one block's weights (plus the small embedding
and output layers, the control links and the activations) sit on the GPU at a time. The 14B DiT has 40
blocks of about 0.35 GB each in bf16 (0.18 GB with fp8 storage). The price is one host-to-device copy of
every block per forward pass, i.e. per sampling step with guidance.

Decision: no prefetching or pinned-memory streams; this mode is for fitting at all, "auto" (ComfyUI's
model management loading the whole model) is the fast path.
"""
from __future__ import annotations

import torch
from torch import nn


class BlockSwap:
    """Attach to a One4D model: ``blocks`` stream through ``device``, everything else lives there."""

    def __init__(self) -> None:
        self._handles: list = []
        self.model: nn.Module | None = None
        self.offload: torch.device = torch.device("cpu")

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self, model: nn.Module, blocks: nn.ModuleList, device: torch.device, offload: torch.device) -> None:
        self.detach()
        self.model, self.offload = model, offload
        in_blocks = {id(m) for block in blocks for m in block.modules()}
        for block in blocks:
            block.to(offload)
        for module in model.modules():  # everything outside the blocks goes to the GPU once
            if id(module) in in_blocks:
                continue
            for _name, p in module.named_parameters(recurse=False):
                p.data = p.data.to(device)
            for name, b in list(module.named_buffers(recurse=False)):
                module._buffers[name] = b.to(device)
        for block in blocks:
            self._handles.append(block.register_forward_pre_hook(_to(device)))
            self._handles.append(block.register_forward_hook(_back(offload)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self.model is not None:
            self.model.to(self.offload)
        self.model = None


def _to(device: torch.device):
    def hook(module: nn.Module, _args):
        module.to(device, non_blocking=True)

    return hook


def _back(offload: torch.device):
    def hook(module: nn.Module, _args, _out):
        module.to(offload, non_blocking=True)

    return hook
