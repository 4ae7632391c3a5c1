"""The Wan example workflows as a ComfyUI user meets them: the models metadata the frontend's missing-models
dialog reads (every model file a loader widget names, with its folder and a download url), the note on the
One4D weights, and the 1.3B workflows run headless, as a client would queue them (``--set`` overrides), on
tiny checkpoints in the real Wan key layout saved under the workflows' own file names."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import nodes
from ckpt_factory import original_state_dict
from comfy_fakes import CORE, small_version
from nodes import cache, comfy_bridge
from nodes.headless import run_prompt
from one4d.backbone import INP_CHANNELS, DitVariant, build_dit, build_vae, dit_config
from one4d.dlc import DLCConfig, One4DModel
from one4d.weights import save_one4d

ROOT = Path(__file__).resolve().parents[1]
WF = ROOT / "example_workflows"
sys.path.insert(0, str(ROOT / "scripts"))
from comfy_client import set_value  # noqa: E402

WAN = sorted(p.stem for p in WF.glob("one4d_*_wan*.json"))
WAN_1_3B = [n for n in WAN if n.endswith("_wan1_3b")]
# Which folder each model widget reads (ComfyUI's folder names; the frontend maps CLIPLoader and
# CLIPVisionLoader to these too): written here, not taken from the generator.
MODEL_WIDGETS = {
    ("One4DLoadBackbone", 0): "diffusion_models",
    ("One4DLoadBackbone", 1): "vae",
    ("One4DApplyPointmapLoRA", 0): "one4d",
    ("One4DApplyRGBLoRA", 0): "loras",
    ("CLIPLoader", 0): "text_encoders",
    ("CLIPVisionLoader", 0): "clip_vision",
}
README = (ROOT / "README.md").read_text()


def _ui(name: str) -> dict:
    return json.loads((WF / f"{name}.json").read_text())


def test_every_wan_workflow_is_there_in_both_sizes():
    assert len(WAN) == 8 and len(WAN_1_3B) == 4, WAN


@pytest.mark.parametrize("name", WAN)
def test_wan_workflow_names_its_model_files_with_folder_and_url(name):
    wf = _ui(name)
    listed = {(m["name"], m["directory"]): m["url"] for m in wf["models"]}
    assert len(listed) == len(wf["models"]), "each file once"
    used = set()
    for node in wf["nodes"]:
        for (kind, index), folder in MODEL_WIDGETS.items():
            if node["type"] != kind:
                continue
            file = node["widgets_values"][index]
            if node["mode"] == 4:  # bypassed (the community-LoRA placeholder): the frontend skips it too
                continue
            assert (file, folder) in listed, f"{name}: {kind} names {folder}/{file}, which the models metadata lacks"
            own = {(m["name"], m["directory"]) for m in node["properties"].get("models", [])}
            assert (file, folder) in own, f"{name}: {kind} does not carry {file} in properties.models"
            used.add((file, folder))
    assert used == set(listed), f"{name}: metadata for files no active loader uses: {set(listed) - used}"
    assert {f for f, _ in used} >= {"wan_2.1_vae.safetensors", "umt5_xxl_fp8_e4m3fn_scaled.safetensors"}
    for (file, folder), url in listed.items():
        assert re.fullmatch(r"https://[\w.-]+/\S+", url), url
        if folder == "one4d":  # no public file: the link is the README section saying how one is made
            assert url.endswith("#the-one4d-weights-file") and "\n### The One4D weights file\n" in README
        else:  # what the frontend offers to download: huggingface.co, a .safetensors name, the file itself
            assert url.startswith("https://huggingface.co/") and "/resolve/" in url and url.endswith(".safetensors"), url
            assert file.endswith(".safetensors")
        assert f"`{file}`" in README, f"README does not list {file}"
    dit = next(f for f, d in used if d == "diffusion_models")
    assert ("1.3B" in dit) == name.endswith("_wan1_3b") and "V1.1" in dit and "InP" in dit


@pytest.mark.parametrize("name", WAN)
def test_wan_workflow_note_says_how_the_one4d_weights_are_made(name):
    wf = _ui(name)
    notes = [n for n in wf["nodes"] if n["type"] == "MarkdownNote"]
    assert len(notes) == 1
    text = notes[0]["widgets_values"][0]
    one4d = next(m["name"] for m in wf["models"] if m["directory"] == "one4d")
    assert f"one4d/{one4d}" in text and "No such file is published" in text and "one4d train" in text
    assert "embedded" in text and "not built" in text
    for m in wf["models"]:
        assert f"{m['directory']}/{m['name']}" in text


def test_1_3b_workflows_are_set_up_for_small_gpus():
    for name in WAN_1_3B:
        api = json.loads((WF / "api" / f"{name}.json").read_text())
        load = next(n["inputs"] for n in api.values() if n["class_type"] == "One4DLoadBackbone")
        cond = next(n["inputs"] for n in api.values() if n["class_type"] == "One4DBuildConditioning")
        assert load["weight_storage"] == "fp8_e4m3fn" and load["memory"] in nodes.One4DLoadBackbone.INPUT_TYPES()["required"]["memory"][0]
        assert (cond["width"], cond["height"], cond["length"]) == (624, 352, 81), "the paper's training size"


# ---------------------------------------------------------------------------------------------------------
# the 1.3B workflows on tiny real-layout checkpoints
# ---------------------------------------------------------------------------------------------------------

def _tiny_1_3b_config() -> dict:
    """A Wan2.1-Fun 1.3B InP in miniature: 36 input channels, image cross-attention fed by clip_vision_h's
    1280-wide features, text 64 wide as the stand-in umT5 encoder (tests/comfy_fakes.py) makes it."""
    cfg = dit_config(32, 2, 64, 2, INP_CHANNELS, image=True, text_dim=64)
    cfg["image_dim"] = 1280
    return cfg


@pytest.fixture()
def wan_1_3b_files(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    wf = _ui(WAN_1_3B[0])
    files = {m["directory"]: m["name"] for m in wf["models"]}
    root = tmp_path / "models"
    torch.manual_seed(0)
    cfg = _tiny_1_3b_config()
    dit = build_dit(cfg).eval()
    (root / "diffusion_models").mkdir(parents=True)
    save_file(original_state_dict({k: v.to(torch.bfloat16) for k, v in dit.state_dict().items()}),
              root / "diffusion_models" / files["diffusion_models"])  # original Wan keys, bf16 as published
    (root / "vae").mkdir()
    save_file(build_vae("tiny-vae").state_dict(), root / "vae" / files["vae"])
    model = One4DModel(dit, DitVariant(cfg, None), DLCConfig(rank=4, link_layers=(0, 1)))
    for p in model.adapter_and_link_parameters():
        torch.nn.init.normal_(p, std=0.02)
    (root / "one4d").mkdir()
    save_one4d(model, root / "one4d" / files["one4d"])
    cache.clear_cache()
    yield root
    cache.clear_cache()


def _as_client_would(prompt: dict) -> dict:
    """The workflow cut to 17 x 64 x 64 and 2 steps with the client's ``--set NODE.inputs.NAME=VALUE``."""
    small = small_version(prompt)
    out = json.loads(json.dumps(prompt))
    for nid, node in small.items():
        for key, value in node["inputs"].items():
            if value != prompt[nid]["inputs"][key]:
                set_value(out, f"{nid}.inputs.{key}={json.dumps(value)}")
    assert out == small
    return out


@pytest.mark.parametrize("name", WAN_1_3B)
def test_1_3b_workflow_runs_headless_on_tiny_real_layout_checkpoints(name, wan_1_3b_files, tmp_path):
    prompt = _as_client_would(json.loads((WF / "api" / f"{name}.json").read_text()))
    results = run_prompt(prompt, dict(nodes.NODE_CLASS_MAPPINGS, **CORE))
    entry = cache._DIT
    assert entry.label == "Wan2.1-Fun-V1.1-1.3B-InP.safetensors" and entry.variant.has_image_attention
    assert entry.dit.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn, "the workflow's fp8 weight storage"
    save = next(nid for nid, n in prompt.items() if n["class_type"] == "One4DSave4D")
    out = tmp_path / "output"
    for ref in results[save]["ui"]["one4d_files"] + results[save]["ui"]["one4d_preview"]:
        path = out / ref["subfolder"] / ref["filename"]
        assert path.exists() and (path.is_dir() or path.stat().st_size > 0), path
    cond = next(nid for nid, n in prompt.items() if n["class_type"] == "One4DBuildConditioning")
    clip = results[cond]["outputs"][0].cond.clip_context
    assert clip is not None and clip.shape == (1, 257, 1280)
    if name.startswith("one4d_text_to_4d"):  # no image: the image cross-attention gets zero CLIP features
        assert not clip.any()
