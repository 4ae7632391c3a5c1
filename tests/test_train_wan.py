"""`one4d train` on a real-layout Wan model folder: the procedural scenes encoded with the folder's VAE and
umT5, One4D adapters and links trained on the frozen base, and the result a model folder that `one4d run`
loads; on 2 gloo processes (torchrun, which `accelerate` runs on) at batch 1 the same weights as 1 process
at batch 2, a checkpoint of 2 processes resuming in 1, the same with the shipped FSDP configuration (2 gloo
processes, each holding half of every parameter), and 20 steps on 2 processes loaded by the nodes."""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch

pytest.importorskip("transformers", reason="training on Wan files needs transformers: pip install 'comfyui-one4d[train]'")
from wan_folder import write_wan_model_folder  # noqa: E402

import nodes  # noqa: E402
from nodes import cache, comfy_bridge  # noqa: E402
from one4d.backbone import read_safetensors  # noqa: E402
from one4d.cli import main  # noqa: E402
from one4d.models import ModelFolder  # noqa: E402
from one4d.weights import read_metadata  # noqa: E402

STEPS = ["--one4d-steps", "3", "--one4d-lr", "1e-2", "--rank", "4", "--links", "2", "--checkpoint-every", "0"]


def _prepared_work(tmp_path, name: str, model) -> str:
    work = tmp_path / name
    assert main(["train", "data", "--work", str(work), "--clips", "4"]) == 0
    assert main(["train", "encode", "--work", str(work), "--model", str(model)]) == 0
    return str(work)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_training_on_a_wan_folder_writes_a_model_folder_that_runs(tmp_path):
    model = write_wan_model_folder(tmp_path, one4d=False)
    work = _prepared_work(tmp_path, "w", model)
    assert main(["train", "one4d", "--work", work, "--model", str(model), "--batch", "2", "--grad-checkpointing", *STEPS]) == 0
    meta = read_metadata(f"{work}/one4d.safetensors")
    assert (meta["rank"], json.loads(meta["link_layers"]), meta["trained_steps"]) == ("4", [0, 1], "3")
    folder = ModelFolder.open(work)
    assert folder.kind == "wan2.1-fun-1.3b" and folder.layout["text_encoder"]["type"] == "umt5"
    out = tmp_path / "out"
    assert main(["run", "--model", work, "--text", "a red room", "--width", "32", "--height", "32", "--length", "5",
                 "--steps", "2", "--out", str(out)]) == 0
    assert (out / "rgb.mp4").is_file()


def _two_processes(work: str, model, *extra: str, env: dict | None = None) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path), **(env or {}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "one4d", "train", "one4d", "--work", work, "--model", str(model),
           "--batch", "1", *STEPS, *extra]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def _close(single: str, other: str) -> None:
    a, b = read_safetensors(f"{single}/one4d.safetensors"), read_safetensors(f"{other}/one4d.safetensors")
    assert a.keys() == b.keys()
    moved = max(float(v.abs().max()) for k, v in a.items() if "lora_B" in k or k.startswith("links."))
    assert moved > 1e-2  # training moved the zero-initialized weights
    # The same updates up to float summation order (all-reduce of two gradients vs one batch of two), which
    # AdamW's normalization can magnify for near-zero gradients: tolerance 0.1% of the largest update.
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst <= 1e-3 * moved, (worst, moved)


def test_two_gloo_processes_at_batch_1_equal_one_process_at_batch_2(tmp_path, capsys):
    model = write_wan_model_folder(tmp_path, one4d=False)
    single = _prepared_work(tmp_path, "single", model)
    assert main(["train", "one4d", "--work", single, "--model", str(model), "--batch", "2", *STEPS]) == 0
    double = _prepared_work(tmp_path, "double", model)
    _two_processes(double, model)
    _close(single, double)
    # a checkpoint written by 2 processes resumes in 1 (same global batch)
    mixed = _prepared_work(tmp_path, "mixed", model)
    _two_processes(mixed, model, "--time-limit", "1e-9")
    assert (tmp_path / "mixed" / "one4d.state.pt").is_file() and read_metadata(f"{mixed}/one4d.safetensors")["trained_steps"] == "1"
    assert main(["train", "one4d", "--work", mixed, "--model", str(model), "--batch", "1", *STEPS]) == 2  # another global batch
    assert "global_batch 2 there, 1 here" in capsys.readouterr().err
    assert main(["train", "one4d", "--work", mixed, "--model", str(model), "--batch", "2", *STEPS]) == 0
    _close(single, mixed)


def _fsdp_environment() -> dict:
    """What `accelerate launch --config_file one4d/training/configs/fsdp.yaml --num_processes 2` gives each
    process, from accelerate's own launcher (which would refuse to start FSDP without GPUs)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    config = os.path.join(os.path.dirname(__file__), "..", "one4d", "training", "configs", "fsdp.yaml")
    args = launch_command_parser().parse_args(["--config_file", config, "--num_processes", "2", "--mixed_precision", "no", "x.py"])
    env = prepare_multi_gpu_env(_validate_launch_command(args)[0])
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_TRANSFORMER_CLS_TO_WRAP"] == "WanTransformerBlock"
    return {k: v for k, v in env.items() if k.startswith(("ACCELERATE_", "FSDP_"))}


def test_fsdp_sharded_processes_make_the_same_updates_and_resume_unsharded(tmp_path, capsys):
    model = write_wan_model_folder(tmp_path, one4d=False)
    single = _prepared_work(tmp_path, "single", model)
    assert main(["train", "one4d", "--work", single, "--model", str(model), "--batch", "2", "--grad-checkpointing", *STEPS]) == 0
    fsdp = _fsdp_environment()
    sharded = _prepared_work(tmp_path, "sharded", model)
    out = _two_processes(sharded, model, "--grad-checkpointing", env=fsdp)
    held = float(re.search(r"FSDP across 2 processes: this process holds ([\d.]+)% of the trainable values", out).group(1))
    assert held < 60, out  # sharded: about half each, not the whole model as under DDP
    _close(single, sharded)
    # stopped after one step while sharded, resumed by one unsharded process
    mixed = _prepared_work(tmp_path, "mixed", model)
    _two_processes(mixed, model, "--grad-checkpointing", "--time-limit", "1e-9", env=fsdp)
    assert read_metadata(f"{mixed}/one4d.safetensors")["trained_steps"] == "1"
    assert main(["train", "one4d", "--work", mixed, "--model", str(model), "--batch", "2", "--grad-checkpointing", *STEPS]) == 0
    assert "resumed at step 1" in capsys.readouterr().out
    _close(single, mixed)


def test_twenty_steps_on_two_processes_load_in_the_nodes_and_sample(tmp_path):
    model = write_wan_model_folder(tmp_path, one4d=False)
    work = _prepared_work(tmp_path, "w", model)
    _two_processes(work, model, "--one4d-steps", "20")  # later options win: 20 steps instead of 3
    assert read_metadata(f"{work}/one4d.safetensors")["trained_steps"] == "20"
    models = tmp_path / "models"
    for sub, src in (("diffusion_models", "comfy_models/wan_tiny_inp.safetensors"), ("vae", "comfy_models/wan_vae_tiny.safetensors"),
                     ("one4d", "w/one4d.safetensors")):
        (models / sub).mkdir(parents=True)
        shutil.copy(tmp_path / src, models / sub)
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input", models=models)
    try:
        handle = nodes.One4DLoadBackbone().load("wan_tiny_inp.safetensors", "wan_vae_tiny.safetensors", "fp32", "auto")[0]
        handle = nodes.One4DApplyPointmapLoRA().apply(handle, "one4d.safetensors")[0]
        positive = [[torch.randn(1, 4, 32), {}]]  # what CLIPTextEncode gives for the tiny umT5 width
        cond = nodes.One4DBuildConditioning().build(handle, width=32, height=32, length=5, frame_indices="first", prompt="",
                                                    negative_prompt="", images=torch.rand(1, 32, 32, 3), positive=positive)[0]
        latents = nodes.One4DSample().sample(handle, cond, seed=0, steps=2, guidance=1.0, shift=3.0, scheduler="unipc")[0]
        assert torch.isfinite(latents["samples"]).all()
    finally:
        cache.clear_cache()
