"""Repeated prompts with other settings reuse the loaded model and do not grow memory:
RSS after 10 runs stays within 10% of RSS after 2 (memory must not grow with the number of prompts)."""
from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import pytest

import nodes
from comfy_fakes import CORE, embedded_version
from nodes import comfy_bridge
from nodes.headless import run_prompt

ROOT = Path(__file__).resolve().parents[1]


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_rss_after_ten_runs_within_ten_percent_of_after_two(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    base = embedded_version(json.loads((ROOT / "example_workflows/api/one4d_embedded_cpu.json").read_text()), steps=2, refine=5)
    classes = dict(nodes.NODE_CLASS_MAPPINGS, **CORE)
    # other settings every run: frames, size, text, seed, steps, guidance, scheduler, exports
    settings = [("first", "a red box", 1.0, 5, 32, 32), ("first", "a blue sphere", 3.0, 9, 48, 32),
                ("none", "a striped floor", 2.0, 5, 32, 64)]
    rss = []
    for run in range(10):
        prompt = json.loads(json.dumps(base))
        for node in prompt.values():
            if node["class_type"] == "One4DSample":
                node["inputs"].update(seed=run, steps=1 + run % 3, guidance=settings[run % 3][2],
                                      scheduler=("unipc", "euler")[run % 2])
            if node["class_type"] == "One4DBuildConditioning":
                spec, text, _, length, height, width = settings[run % 3]
                node["inputs"].update(frame_indices=spec, prompt=text, length=length, height=height, width=width)
                if spec == "none":
                    del node["inputs"]["images"]
            if node["class_type"] == "One4DSave4D":
                node["inputs"].update(save_ply=False, save_glb=run % 2 == 0, save_npz=False)
        run_prompt(prompt, classes)
        gc.collect()
        rss.append(rss_bytes())
    print("RSS MiB per run:", [round(r / 2**20) for r in rss])
    assert rss[9] <= 1.10 * rss[1], f"RSS grew from {rss[1] / 2**20:.0f} MiB (run 2) to {rss[9] / 2**20:.0f} MiB (run 10)"
