"""Benchmarks of the Decoupled LoRA Control forward against the plain backbone and two-pass peft, and of a
DLC training step against a plain Wan LoRA training step.

Setup (a realistic rank-to-width ratio at CPU size): width 512, 4 heads, FFN 1536, 8 blocks, rank 8,
1,024 tokens per branch (latent 4 x 32 x 32), one linked block (the 14B's proportion: 5 of 40), one
thread (small CPU ops slow down badly when threads outnumber free cores). Ratios compare the fastest of
interleaved repetitions (noise on a shared machine only adds time) against the plain backbone's forward
over a batch of two clips (the same base work with no LoRA or link). Peak memory is the rise of the
process's peak RSS during one forward, measured in a fresh subprocess.
"""
from __future__ import annotations

import multiprocessing as mp
import resource
import time
from typing import Callable

import torch

from ..backbone import DIT_PRESETS, DitVariant, dit_config, build_dit
from ..dlc import BRANCHES, DLCConfig, One4DModel, count_dlc_parameters, forward_mode

BENCH_CONFIG = dit_config(512, 4, 1536, 8, 36, image=False, text_dim=512)
BENCH_LATENT = (4, 32, 32)
BENCH_RANK = 8
BENCH_LINKS = (4,)


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    variant = DitVariant(BENCH_CONFIG, None)
    dit = build_dit(BENCH_CONFIG).eval()
    model = One4DModel(dit, variant, DLCConfig(rank=BENCH_RANK, link_layers=BENCH_LINKS))
    for _, layer in model.lora_layers():  # non-zero adapters: the work must be real
        for b in BRANCHES:
            torch.nn.init.normal_(layer.lora_B[b].weight, std=0.01)
    for lin in [*model.links.xyz_to_rgb, *model.links.rgb_to_xyz]:
        torch.nn.init.normal_(lin.weight, std=0.01)
    t, h, w = BENCH_LATENT
    rgb, xyz = torch.randn(1, 16, t, h, w), torch.randn(1, 16, t, h, w)
    mask, cond = torch.ones(1, 4, t, h, w), torch.randn(1, 16, t, h, w)
    ts, ctx = torch.tensor([500.0]), torch.randn(1, 512, 512)
    return model, (rgb, xyz, ts, ctx, mask, cond)


def _runners(model: One4DModel, inputs) -> dict[str, Callable[[], object]]:
    rgb, xyz, ts, ctx, mask, cond = inputs
    both = model.prepare_inputs(rgb, xyz, mask, cond)
    dit = model.dit

    def plain2():
        with forward_mode("plain"):
            return dit(both, ts.repeat(2), ctx.repeat(2, 1, 1), return_dict=False)

    def dlc():
        return model(rgb, xyz, ts, ctx, mask, cond)

    def naive():
        outs = []
        with forward_mode("peft"):
            for i, b in enumerate(BRANCHES):
                for _, layer in model.lora_layers():
                    layer.set_adapter(b)
                outs.append(dit(both[i : i + 1], ts, ctx, return_dict=False))
        return outs

    def peft_mixed():
        with forward_mode("peft"):
            return _peft_mixed(model, both, ts, ctx)

    return {"plain2": plain2, "dlc": dlc, "naive": naive, "peft_mixed": peft_mixed}


def _peft_mixed(model: One4DModel, both, ts, ctx):
    """peft's built-in mixed-adapter batch: ``adapter_names`` passed down to every LoRA layer."""
    handles = []
    names = list(BRANCHES)
    for _, layer in model.lora_layers():
        handles.append(layer.register_forward_pre_hook(lambda m, a, k: (a, {**k, "adapter_names": names}), with_kwargs=True))
    try:
        return model.dit(both, ts.repeat(2), ctx.repeat(2, 1, 1), return_dict=False)
    finally:
        for h in handles:
            h.remove()


def _time_ratios(repeats: int) -> dict[str, float]:
    torch.set_num_threads(1)
    model, inputs = _setup()
    run = _runners(model, inputs)
    times: dict[str, list[float]] = {k: [] for k in run}
    with torch.no_grad():
        for fn in run.values():
            fn()  # warm-up
        for _ in range(repeats):
            for name, fn in run.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    return {
        "plain_batch2_forward_s": best["plain2"],
        "dlc_forward_ratio": best["dlc"] / best["plain2"],
        "naive_forward_ratio": best["naive"] / best["plain2"],
        "peft_mixed_forward_ratio": best["peft_mixed"] / best["plain2"],
    }


def _train_ratio(repeats: int) -> dict[str, float]:
    """A DLC training step (both branches, forward and backward, adapters and links trainable) against a plain
    Wan LoRA training step at the same shapes (one branch, its LoRA only): the paper's cost of the second
    modality, which should stay near 2x."""
    torch.set_num_threads(1)
    model, (rgb, xyz, ts, ctx, mask, cond) = _setup()
    x_rgb = model.prepare_inputs(rgb, xyz, mask, cond)[:1]

    def lora_step() -> None:
        with forward_mode("peft"):
            for _, layer in model.lora_layers():
                layer.set_adapter(BRANCHES[0])  # peft: only this adapter trains
            model.dit(x_rgb, ts, ctx, return_dict=False)[0].square().mean().backward()

    def dlc_step() -> None:
        model.set_trainable(True)
        v_rgb, v_xyz = model(rgb, xyz, ts, ctx, mask, cond)
        (v_rgb.square().mean() + v_xyz.square().mean()).backward()

    steps = {"lora": lora_step, "dlc": dlc_step}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for fn in steps.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in steps.items():
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    return {"lora_train_step_s": best["lora"], "dlc_train_step_ratio": best["dlc"] / best["lora"]}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def _peak_child(kind: str, queue) -> None:
    torch.set_num_threads(1)
    model, inputs = _setup()
    run = _runners(model, inputs)[kind]
    with torch.no_grad():
        before = _rss_bytes()
        run()
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before)


def _peak_rise(kind: str) -> int:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_child, args=(kind, queue))
    proc.start()
    value = queue.get(timeout=600)
    proc.join()
    return int(value)


def _param_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def dlc_benchmarks(repeats: int = 9) -> dict[str, float]:
    """All DLC figures of ``one4d bench`` in one run."""
    out = _time_ratios(repeats)
    out.update(_train_ratio(max(3, repeats // 3)))
    dit = build_dit(BENCH_CONFIG)
    before = _param_bytes(dit)
    model = One4DModel(dit, DitVariant(BENCH_CONFIG, None), DLCConfig(rank=BENCH_RANK, link_layers=BENCH_LINKS))
    out["dlc_param_overhead_bytes"] = _param_bytes(model) - before
    out["adapter_and_link_bytes"] = sum(p.numel() * p.element_size() for p in model.adapter_and_link_parameters())
    out["dlc_peak_mem_bytes"] = _peak_rise("dlc")
    out["naive_peak_mem_bytes"] = _peak_rise("naive")
    # Weight traffic when blocks stream from CPU memory: the batched forward reads each base weight once.
    real = DitVariant(DIT_PRESETS["wan2.1-fun-v1.1-14b-inp"], "wan2.1-fun-v1.1-14b-inp")
    base_bf16 = sum(p.numel() for p in build_dit(real.config, device="meta").blocks.parameters()) * 2
    out["base_weight_bytes_per_step_batched_14b_bf16"] = base_bf16
    out["base_weight_bytes_per_step_two_pass_14b_bf16"] = 2 * base_bf16
    counts = count_dlc_parameters(real)
    out["trainable_adapters_14b"] = counts["adapters"]
    out["trainable_links_14b"] = counts["links"]
    return out
