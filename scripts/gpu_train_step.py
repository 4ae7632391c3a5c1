"""One One4D training step at real shapes with random weights: seconds per step and peak memory, for a DLC step
(both branches, adapters and links trainable) and a plain Wan LoRA step (one branch, its LoRA only), and their
ratio. Ready for the few minutes of a lent GPU:

    python scripts/gpu_train_step.py --preset wan2.1-fun-v1.1-1.3b-inp --frames 81 --height 352 --width 624

Prints a table and one JSON line. On a CPU it runs at tiny shapes (``--preset tiny-inp --frames 5 --height 32
--width 32``), which is how it is tested. Weights are random (built on the device, nothing is read).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from one4d.backbone import DIT_PRESETS, WAN21, DitVariant, build_dit
from one4d.dlc import BRANCHES, DLCConfig, One4DModel, forward_mode
from one4d.umc import build_mask


def measure(preset: str, frames: int, height: int, width: int, rank: int, repeats: int, checkpointing: bool) -> dict[str, float]:
    """Best-of-``repeats`` seconds and peak memory of each kind of step (module docstring)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    cfg = DIT_PRESETS[preset]
    torch.manual_seed(0)
    dit = build_dit(cfg, device=device, dtype=dtype)
    model = One4DModel(dit, DitVariant(cfg, preset), DLCConfig(rank=rank))
    if checkpointing:
        model.enable_gradient_checkpointing()
    model.train()
    t, h, w = WAN21.latent_shape(frames, height, width)
    g = lambda *shape: torch.randn(*shape, device=device, dtype=dtype)  # noqa: E731
    rgb, xyz, cond = g(1, 16, t, h, w), g(1, 16, t, h, w), g(1, 16, t, h, w)
    mask = build_mask([0], frames, (h, w), WAN21).to(device, dtype)
    ts, ctx = torch.tensor([500.0], device=device), g(1, 512, cfg["text_dim"])
    clip = g(1, 257, cfg["image_dim"]) if cfg["image_dim"] else None
    x_rgb = model.prepare_inputs(rgb, xyz, mask, cond)[:1]

    def lora_step() -> None:
        with forward_mode("peft"):
            for _, layer in model.lora_layers():
                layer.set_adapter(BRANCHES[0])
            model.dit(x_rgb, ts, ctx, clip, return_dict=False)[0].float().square().mean().backward()

    def dlc_step() -> None:
        model.set_trainable(True)
        v_rgb, v_xyz = model(rgb, xyz, ts, ctx, mask, cond, clip)
        (v_rgb.float().square().mean() + v_xyz.float().square().mean()).backward()

    out: dict[str, float] = {"tokens_per_branch": t * (h // 2) * (w // 2)}
    for name, step in (("lora", lora_step), ("dlc", dlc_step)):
        times = []
        for i in range(repeats + 1):  # the first is a warm-up
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize()
                out[f"{name}_peak_gib"] = torch.cuda.max_memory_allocated() / 1024**3
            if i:
                times.append(time.perf_counter() - t0)
        out[f"{name}_s_per_step"] = min(times)
    out["dlc_to_lora_ratio"] = out["dlc_s_per_step"] / out["lora_s_per_step"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="wan2.1-fun-v1.1-1.3b-inp", choices=sorted(DIT_PRESETS))
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--height", type=int, default=352)
    p.add_argument("--width", type=int, default=624)
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--no-checkpointing", action="store_true", help="keep every block's activations")
    args = p.parse_args(argv)
    figures = measure(args.preset, args.frames, args.height, args.width, args.rank, args.repeats, not args.no_checkpointing)
    for k, v in figures.items():
        print(f"{k:<22}{v:>12.4f}")
    print(json.dumps({"preset": args.preset, "clip": [args.frames, args.height, args.width], **figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
