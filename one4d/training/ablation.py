"""The two alternatives to Decoupled LoRA Control that the paper argues against, for the ablation.

Both share ONE LoRA between the modalities on the frozen base (same targets and rank as DLC):
- ``channel`` (WVD-style): XYZ latents enter as extra input channels (a zero-initialized patch
  embedding added to the RGB one) and leave through a second output head (initialized from the RGB
  head); one token sequence carries both modalities.
- ``width`` (4DNeX-style): the RGB input ``[noise | mask | cond]`` and the XYZ input ``[noise | zeros]``
  are placed side by side along the width, so attention runs over twice the tokens; the output is split.
Both expose the :class:`one4d.dlc.One4DModel` call signature, so the sampler, pipeline and evaluation
run them unchanged. ``one4d train ablation`` trains all three on the same data and budget.
"""
from __future__ import annotations

import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from ..backbone import DitVariant
from ..dlc import TARGET_MODULES


class _SharedLoRA(nn.Module):
    """A frozen DiT with one shared LoRA adapter (peft's own forward)."""

    def __init__(self, dit: nn.Module, variant: DitVariant, rank: int):
        super().__init__()
        self.dit, self.variant, self.base_only = dit, variant, False
        dit.requires_grad_(False)
        inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=TARGET_MODULES, lora_dropout=0.0), dit, adapter_name="shared")

    def _inputs(self, rgb, xyz, mask, cond):
        zeros = xyz.new_zeros([xyz.shape[0], 20, *xyz.shape[2:]])
        return torch.cat([rgb, mask, cond], 1), torch.cat([xyz, zeros], 1)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if "lora_" in n or n.startswith("xyz_")]


class WidthConcatModel(_SharedLoRA):
    """RGB and XYZ tokens side by side in one sequence (twice the attention length)."""

    def forward(self, rgb, xyz, timestep, context, mask=None, cond=None, clip_context=None, extras=None):
        x_rgb, x_xyz = self._inputs(rgb, xyz, mask, cond)
        out = self.dit(torch.cat([x_rgb, x_xyz], dim=-1), timestep, context, clip_context, return_dict=False)[0]
        return out.chunk(2, dim=-1)


class ChannelConcatModel(_SharedLoRA):
    """XYZ as extra input channels and a second output head on one token sequence."""

    def __init__(self, dit: nn.Module, variant: DitVariant, rank: int):
        super().__init__(dit, variant, rank)
        pe, head = dit.patch_embedding, dit.proj_out
        self.xyz_in = nn.Conv3d(variant.config["out_channels"], pe.out_channels, kernel_size=pe.kernel_size, stride=pe.stride)
        nn.init.zeros_(self.xyz_in.weight)
        nn.init.zeros_(self.xyz_in.bias)
        self.xyz_out = nn.Linear(head.in_features, head.out_features)
        self.xyz_out.load_state_dict(head.base_layer.state_dict() if hasattr(head, "base_layer") else head.state_dict())
        self._pending: dict[str, torch.Tensor] = {}
        pe.register_forward_hook(lambda m, a, out: out + self.xyz_in(self._pending.pop("xyz")) if "xyz" in self._pending else None)
        head.register_forward_hook(self._capture)

    def _capture(self, _m, args, out):
        if "want_head" in self._pending:
            self._pending.pop("want_head")
            self._pending["head_in"] = args[0]
        return None

    def forward(self, rgb, xyz, timestep, context, mask=None, cond=None, clip_context=None, extras=None):
        x_rgb, _ = self._inputs(rgb, xyz, mask, cond)
        self._pending.update(xyz=xyz.to(x_rgb.dtype), want_head=torch.empty(0))
        v_rgb = self.dit(x_rgb, timestep, context, clip_context, return_dict=False)[0]
        h = self._pending.pop("head_in")
        n, _, t, hh, ww = rgb.shape
        p = self.dit.config.patch_size
        y = self.xyz_out(h).reshape(n, t // p[0], hh // p[1], ww // p[2], p[0], p[1], p[2], -1)
        v_xyz = y.permute(0, 7, 1, 4, 2, 5, 3, 6).flatten(6, 7).flatten(4, 5).flatten(2, 3)
        return v_rgb, v_xyz

