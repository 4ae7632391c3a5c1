"""The on-paper training-memory table of `one4d bench --only memory`: token counts, parameter counts and the
effect of checkpointing follow from the real configs."""
from __future__ import annotations

import pytest

from one4d.bench.memory import memory_table, tokens


def test_tokens_follow_wan_strides_and_patch():
    assert tokens(81, 352, 624) == 21 * 22 * 39 == 18018 and tokens(17, 480, 832) == 5 * 30 * 52


def test_memory_table_matches_the_paper_and_checkpointing_helps():
    t = memory_table()
    assert t["14b_trainable_params"] == pytest.approx(935.7e6, rel=0.06)  # the paper: 935.7M (rank 64, 5 links)
    assert t["14b_base_bf16_gib"] == pytest.approx(2 * t["14b_base_fp8_gib"]) and 25 < t["14b_base_bf16_gib"] < 35
    for name in ("1.3b", "14b"):
        full, ckpt = t[f"{name}_81x352x624_activations_gib"], t[f"{name}_81x352x624_activations_checkpointed_gib"]
        assert ckpt < full / 10


def test_the_gpu_step_script_runs_at_tiny_shapes():
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_train_step.py"
    run = subprocess.run([sys.executable, str(script), "--preset", "tiny-inp", "--frames", "5", "--height", "32", "--width", "32",
                          "--rank", "4", "--repeats", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    doc = json.loads(run.stdout.strip().splitlines()[-1])
    assert doc["tokens_per_branch"] == 8 and doc["lora_s_per_step"] > 0 and doc["dlc_to_lora_ratio"] > 0
