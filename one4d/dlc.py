"""Decoupled LoRA Control: one frozen Wan DiT, two modality LoRAs (``rgb``, ``xyz``) and control links.

peft defines the adapters (``LoraConfig``, named adapters, weights and key names). The two-branch forward
is this project's own because peft's mixed-adapter batch gathers and scatters sub-batches in every layer:
here RGB and XYZ samples ride in one batch ``[rgb..., xyz...]`` through every base layer (one matrix
product over both token sets), each half gets its own LoRA delta from one batched product, attention stays
per sample (the modalities never share a sequence), and zero-initialized links add each branch's hidden
states to the other's after the linked blocks. Inference (no autograd) on small layers, where the rank-r
products are a sizeable share of the cost, uses per-branch merged weights instead (``merges_for_inference``).

Decisions the paper leaves open: alpha defaults to the rank (scale 1); links sit after 5 evenly spaced
blocks (``default_link_layers``) and have a bias; the image (CLIP) context, like the text, is shared by both
branches. Community Wan LoRAs become extra peft adapters applied to the RGB half only.
"""
from __future__ import annotations

import contextlib
import threading
import types
import warnings
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.utils.checkpoint
from peft import LoraConfig, inject_adapter_in_model
from peft.tuners.lora.layer import Linear as LoraLinear
from torch import nn

from .backbone import DitVariant, build_dit
from .errors import One4DInputError

BRANCHES = ("rgb", "xyz")
TARGET_MODULES = (
    r".*blocks\.\d+\.(attn1\.(to_q|to_k|to_v|to_out\.0)"
    r"|attn2\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)"
    r"|ffn\.net\.0\.proj|ffn\.net\.2)"
)


def default_link_layers(num_layers: int, count: int = 5) -> tuple[int, ...]:
    """Evenly spaced block indices (centres of ``count`` equal spans), e.g. 40 blocks -> 4, 12, 20, 28, 36."""
    count = min(count, num_layers)
    return tuple(sorted({int((i + 0.5) * num_layers / count) for i in range(count)}))


@dataclass
class DLCConfig:
    """Adapter and link settings; stored in the One4D weight file's metadata."""

    rank: int = 64
    alpha: float | None = None  # None -> rank
    link_layers: tuple[int, ...] | None = None  # None -> default_link_layers
    link_bias: bool = True

    def resolve(self, num_layers: int) -> "DLCConfig":
        links = tuple(self.link_layers) if self.link_layers is not None else default_link_layers(num_layers)
        bad = [i for i in links if not 0 <= i < num_layers]
        if bad:
            raise One4DInputError(f"link_layers {bad} are outside the backbone's {num_layers} blocks; use 0..{num_layers - 1}.")
        return DLCConfig(self.rank, float(self.alpha if self.alpha is not None else self.rank), links, self.link_bias)


@dataclass
class _Mode(threading.local):
    """How patched LoRA layers and link hooks behave in the current thread."""

    kind: str = "plain"  # plain: base only | dlc: two-branch batch | peft: peft's own forward
    extras: list[tuple[str, float]] = field(default_factory=list)  # RGB-only adapters and strengths


_MODE = _Mode()


@contextlib.contextmanager
def forward_mode(kind: str, extras: list[tuple[str, float]] | None = None) -> Iterator[None]:
    """Select how the patched layers run: ``plain`` (the untouched backbone), ``dlc`` or ``peft``."""
    prev = (_MODE.kind, _MODE.extras)
    _MODE.kind, _MODE.extras = kind, list(extras or [])
    try:
        yield
    finally:
        _MODE.kind, _MODE.extras = prev


def _lora_delta(layer: LoraLinear, name: str, x: torch.Tensor) -> torch.Tensor:
    a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
    return (x.to(a.dtype) @ a.t()) @ b.t()


class SharedInputGroup:
    """LoRA layers fed the same tensor (q, k, v of one attention): one down-projection for all of them.

    The rank-r products are memory-bound (they read the whole input for a few columns of output), so the
    first member to run computes ``x @ [A_1; A_2; ...]^T`` for both branches at once and the others take
    their slice. The cache holds the input tensor itself and is dropped once every member has read it.
    """

    def __init__(self, layers: list[LoraLinear]):
        self.layers = layers
        self._x: torch.Tensor | None = None
        self._xa: torch.Tensor | None = None
        self._pending = 0

    def down(self, layer: LoraLinear, x2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``[2, rows, r]`` down-projection of ``layer`` (``x2`` is ``x`` viewed as ``[2, rows, in]``)."""
        if self._x is not x or self._pending == 0:
            a = torch.cat([torch.stack([m.lora_A[b].weight for b in BRANCHES]) for m in self.layers], dim=1)
            self._x, self._xa, self._pending = x, torch.bmm(x2.to(a.dtype), a.transpose(1, 2)), len(self.layers)
        r = layer.lora_A[BRANCHES[0]].weight.shape[0]
        i = self.layers.index(layer)
        out = self._xa[..., i * r : (i + 1) * r]
        self._pending -= 1
        if self._pending == 0:
            self._x = self._xa = None
        return out


MERGE_SHARE = 1 / 8  # merge for inference when the adapters' products cost more than this share of the base's


def merges_for_inference(layer: LoraLinear) -> bool:
    """Whether inference runs ``layer`` with per-branch merged weights ``W + s B_b A_b`` (one batched product)
    instead of the base product plus the two rank-r ones: when the rank-r products are a sizeable share of
    the cost (small models such as the embedded one; not Wan's, where rank 64 costs 2.5-8 %) and the base is a
    plain float Linear. The merged pair costs two copies of the layer's weight, so only small layers qualify."""
    base, r = layer.base_layer, layer.lora_A[BRANCHES[0]].weight.shape[0]
    return (type(base) is nn.Linear and base.weight.dtype in (torch.float32, torch.float16, torch.bfloat16)
            and r * (base.in_features + base.out_features) > MERGE_SHARE * base.in_features * base.out_features)


def _merge(layer: LoraLinear) -> torch.Tensor:
    """``[2, out, in]`` weights ``W + s B_b A_b`` of both branches, in the base weight's dtype."""
    w, s = layer.base_layer.weight, layer.scaling[BRANCHES[0]]
    merged = torch.stack([w.float() + s * (layer.lora_B[b].weight.float() @ layer.lora_A[b].weight.float()) for b in BRANCHES])
    return merged.to(w.dtype)


def _merged_weights(layer: LoraLinear, rows: int) -> torch.Tensor | None:
    """``[2, out, in]`` merged weights of both branches, cached until any of their tensors changes.

    Weights made under ``torch.inference_mode`` (ComfyUI builds and runs models in it) keep no version counter,
    so an in-place update could not be told from the cache key: they are merged afresh on every call when that
    costs less than the rank-r products over ``rows`` tokens per branch, and ``None`` (run unmerged) otherwise."""
    parts = [layer.base_layer.weight] + [m[b].weight for b in BRANCHES for m in (layer.lora_A, layer.lora_B)]
    if any(t.is_inference() for t in parts):
        base = layer.base_layer
        cheaper = base.in_features * base.out_features < rows * (base.in_features + base.out_features)
        return _merge(layer) if cheaper else None
    key = (tuple((t.data_ptr(), t._version, t.device, t.dtype) for t in parts), layer.scaling[BRANCHES[0]])
    cached = getattr(layer, "_one4d_merged", None)
    if cached is None or cached[0] != key:
        cached = layer._one4d_merged = (key, _merge(layer))
    return cached[1]


def _dual_branch_forward(self: LoraLinear, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    """Patched forward of a peft LoRA Linear; behaviour depends on the thread's forward mode."""
    if _MODE.kind == "peft":
        return LoraLinear.forward(self, x, *args, **kwargs)
    n = x.shape[0] // 2
    rows = x[0].numel() // x.shape[-1] * n  # tokens per branch
    x2 = x.reshape(2, rows, x.shape[-1])
    w = _merged_weights(self, rows) if _MODE.kind == "dlc" and not torch.is_grad_enabled() and merges_for_inference(self) else None
    if w is not None:
        bias = self.base_layer.bias
        out = torch.bmm(x2.to(w.dtype), w.transpose(1, 2))
        out = (out if bias is None else out + bias.to(out.dtype)).reshape(*x.shape[:-1], w.shape[1])
        return _add_extras(self, x, out, n)
    out = self.base_layer(x, *args, **kwargs)
    if _MODE.kind != "dlc":
        return out
    group = getattr(self, "one4d_group", None)
    if group is not None:
        xa = group.down(self, x2, x)
    else:
        a = torch.stack([self.lora_A[b].weight for b in BRANCHES])  # [2, r, in]
        xa = torch.bmm(x2.to(a.dtype), a.transpose(1, 2))  # [2, rows, r]
    bm = torch.stack([self.lora_B[b].weight for b in BRANCHES])  # [2, out, r]
    if out.dtype == bm.dtype and out.is_contiguous():
        # add both branches' deltas in place into the base output: no extra full-size tensor
        out.view(2, rows, -1).baddbmm_(xa, bm.transpose(1, 2), alpha=self.scaling[BRANCHES[0]])
    else:
        out = out + (torch.bmm(xa, bm.transpose(1, 2)) * self.scaling[BRANCHES[0]]).reshape(out.shape).to(out.dtype)
    return _add_extras(self, x, out, n)


def _add_extras(layer: LoraLinear, x: torch.Tensor, out: torch.Tensor, n: int) -> torch.Tensor:
    """Add the thread's extra (community) adapters to the RGB half of a two-branch output."""
    for name, strength in _MODE.extras:
        if name in layer.lora_A:
            extra = _lora_delta(layer, name, x[:n]) * (layer.scaling[name] * strength)
            out = torch.cat([out[:n] + extra.to(out.dtype), out[n:]])
    return out


class ControlLinks(nn.Module):
    """Zero-initialized Linear pairs at selected blocks: h_rgb += L_x2r(h_xyz), h_xyz += L_r2x(h_rgb)."""

    def __init__(self, hidden: int, layers: tuple[int, ...], bias: bool = True, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.layers = tuple(layers)
        self.xyz_to_rgb = nn.ModuleList(nn.Linear(hidden, hidden, bias=bias, dtype=dtype) for _ in layers)
        self.rgb_to_xyz = nn.ModuleList(nn.Linear(hidden, hidden, bias=bias, dtype=dtype) for _ in layers)
        for lin in [*self.xyz_to_rgb, *self.rgb_to_xyz]:
            nn.init.zeros_(lin.weight)
            if bias:
                nn.init.zeros_(lin.bias)

    def mix(self, slot: int, hidden: torch.Tensor) -> torch.Tensor:
        """Exchange information between the two halves of a ``[rgb..., xyz...]`` hidden-state batch."""
        h_rgb, h_xyz = hidden.chunk(2)
        new_rgb = h_rgb + self.xyz_to_rgb[slot](h_xyz).to(hidden.dtype)
        new_xyz = h_xyz + self.rgb_to_xyz[slot](h_rgb).to(hidden.dtype)
        return torch.cat([new_rgb, new_xyz])


class One4DModel(nn.Module):
    """The frozen Wan DiT with the ``rgb``/``xyz`` LoRAs and control links (the paper's section 5)."""

    def __init__(self, dit: nn.Module, variant: DitVariant, config: DLCConfig | None = None):
        super().__init__()
        cfg = (config or DLCConfig()).resolve(variant.config["num_layers"])
        self.config, self.variant = cfg, variant
        self.dit = dit
        dit.requires_grad_(False)
        dtype = next(dit.parameters()).dtype if next(dit.parameters()).is_floating_point() else torch.float32
        for name in BRANCHES:
            self._inject(name, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=TARGET_MODULES, lora_dropout=0.0))
        device = next(dit.parameters()).device
        self.links = ControlLinks(variant.hidden_size, cfg.link_layers, cfg.link_bias, dtype=dtype).to(device)
        self._group_shared_inputs()
        self.extra_adapters: list[str] = []
        self.base_only = False  # True: run the untouched backbone on both halves (evaluation reference)
        self.links_enabled = True  # False: both branches run alone, adapters on (the coupling report's reference)
        for slot, idx in enumerate(cfg.link_layers):
            dit.blocks[idx].register_forward_hook(self._link_hook(slot))
        self.set_trainable(True)

    def _inject(self, name: str, lora: LoraConfig) -> None:
        with warnings.catch_warnings():  # peft warns that a second adapter is being added: that is the design
            warnings.simplefilter("ignore", UserWarning)
            inject_adapter_in_model(lora, self.dit, adapter_name=name)
        for module in self.dit.modules():
            if isinstance(module, LoraLinear):
                if "forward" not in module.__dict__:
                    module.forward = types.MethodType(_dual_branch_forward, module)
                if name in module.lora_A and module.lora_A[name].weight.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
                    # fp8-stored base weights: adapters train and compute in bf16, never in fp8
                    module.lora_A[name].to(torch.bfloat16)
                    module.lora_B[name].to(torch.bfloat16)

    def _group_shared_inputs(self) -> None:
        """Attach a :class:`SharedInputGroup` to the projections of each attention that share their input."""
        for block in self.dit.blocks:
            for names in (("attn1", ("to_q", "to_k", "to_v")), ("attn2", ("to_k", "to_v")), ("attn2", ("add_k_proj", "add_v_proj"))):
                attn = getattr(block, names[0])
                layers = [getattr(attn, n, None) for n in names[1]]
                if all(isinstance(m, LoraLinear) for m in layers):
                    group = SharedInputGroup(layers)
                    for m in layers:
                        m.one4d_group = group

    def _link_hook(self, slot: int):
        def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
            return self.links.mix(slot, output) if _MODE.kind == "dlc" and self.links_enabled else None

        return hook

    def lora_layers(self) -> Iterator[tuple[str, LoraLinear]]:
        for name, module in self.dit.named_modules():
            if isinstance(module, LoraLinear):
                yield name, module

    def set_trainable(self, enabled: bool) -> None:
        """Mark exactly the two modality adapters and the links trainable; the base stays frozen."""
        for _, layer in self.lora_layers():
            layer.base_layer.requires_grad_(False)
            for name in BRANCHES:
                layer.lora_A[name].requires_grad_(enabled)
                layer.lora_B[name].requires_grad_(enabled)
        self.links.requires_grad_(enabled)

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each DiT block in the backward pass instead of keeping its activations (training memory).

        The recomputation runs after :func:`forward_mode` has exited, so each block is checkpointed together
        with the mode it ran in; diffusers' default would recompute it as the plain backbone."""

        def checkpoint(block: nn.Module, *args):
            kind, extras = _MODE.kind, list(_MODE.extras)

            def run(*inner):
                with forward_mode(kind, extras):
                    return block(*inner)

            return torch.utils.checkpoint.checkpoint(run, *args, use_reentrant=False)

        self.dit.enable_gradient_checkpointing(gradient_checkpointing_func=checkpoint)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def add_rgb_adapter(self, name: str, lora: LoraConfig) -> None:
        """Inject an extra (community) LoRA adapter; it applies to the RGB branch only, never trained here."""
        if name in BRANCHES or name in self.extra_adapters:
            raise One4DInputError(f"adapter name '{name}' is already in use; pick another name.")
        self._inject(name, lora)
        for _, layer in self.lora_layers():
            if name in layer.lora_A:
                layer.lora_A[name].requires_grad_(False)
                layer.lora_B[name].requires_grad_(False)
        self.extra_adapters.append(name)

    def prepare_inputs(self, rgb_latents: torch.Tensor, xyz_latents: torch.Tensor, mask: torch.Tensor | None, cond: torch.Tensor | None) -> torch.Tensor:
        """Stack ``[noise C | mask s | cond C]`` (RGB) and ``[noise C | zeros s + C]`` (XYZ) into one batch."""
        in_ch, lat_ch = self.variant.config["in_channels"], self.variant.config["out_channels"]
        if in_ch == lat_ch:
            if mask is not None and bool(mask.any()):
                raise One4DInputError(
                    f"this backbone is a text-to-video Wan ({in_ch} input channels) and cannot take conditioning frames; "
                    "load a Wan2.1-Fun InP / I2V model, or give no frames (text-to-4D)."
                )
            return torch.cat([rgb_latents, xyz_latents])
        if mask is None or cond is None:
            shape = list(rgb_latents.shape)
            mask = rgb_latents.new_zeros([shape[0], in_ch - 2 * lat_ch, *shape[2:]])
            cond = torch.zeros_like(rgb_latents)
        rgb = torch.cat([rgb_latents, mask.to(rgb_latents.dtype), cond.to(rgb_latents.dtype)], dim=1)
        xyz = torch.cat([xyz_latents, xyz_latents.new_zeros([xyz_latents.shape[0], in_ch - lat_ch, *xyz_latents.shape[2:]])], dim=1)
        return torch.cat([rgb, xyz])

    def forward(
        self,
        rgb_latents: torch.Tensor,
        xyz_latents: torch.Tensor,
        timestep: torch.Tensor,
        context: torch.Tensor,
        mask: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        clip_context: torch.Tensor | None = None,
        extras: list[tuple[str, float]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict the flow velocity of both modalities in one two-branch batch.

        ``rgb_latents``/``xyz_latents``: ``[N, 16, T, h, w]``; ``timestep``: ``[N]`` (0..1000); ``context``:
        ``[N, 512, text_dim]``; ``mask``: ``[N, 4, T, h, w]``; ``cond``: ``[N, 16, T, h, w]``.
        """
        x = self.prepare_inputs(rgb_latents, xyz_latents, mask, cond)
        two = lambda t: None if t is None else torch.cat([t, t])  # noqa: E731
        with forward_mode("plain" if self.base_only else "dlc", extras):
            out = self.dit(
                hidden_states=x,
                timestep=two(timestep),
                encoder_hidden_states=two(context),
                encoder_hidden_states_image=two(clip_context),
                return_dict=False,
            )[0]
        return tuple(half.clone() for half in out.chunk(2))  # not views: FSDP's backward hooks need owned tensors

    def adapter_and_link_parameters(self) -> list[nn.Parameter]:
        """The parameters DLC adds to the backbone (both adapters and the links)."""
        params = [p for _, layer in self.lora_layers() for b in BRANCHES for p in (*layer.lora_A[b].parameters(), *layer.lora_B[b].parameters())]
        return params + list(self.links.parameters())


def count_dlc_parameters(variant: DitVariant, config: DLCConfig | None = None) -> dict[str, int]:
    """Count adapter and link parameters of a DLC model from the config alone (nothing is allocated)."""
    cfg = (config or DLCConfig()).resolve(variant.config["num_layers"])
    with torch.device("meta"):
        model = One4DModel(build_dit(variant.config, device="meta"), variant, cfg)
    adapters = sum(p.numel() for _, layer in model.lora_layers() for b in BRANCHES for p in (*layer.lora_A[b].parameters(), *layer.lora_B[b].parameters()))
    links = sum(p.numel() for p in model.links.parameters())
    return {"adapters": adapters, "links": links, "total": adapters + links}
