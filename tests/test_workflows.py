"""Example workflows: UI files load into the node definitions (types, slots, widget order and values), their
API twins match them, the files are what the generator writes, and every API twin runs through the node
classes in dependency order on the embedded model and writes its files."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import nodes
from comfy_fakes import CORE, embedded_version
from nodes import comfy_bridge
from nodes.headless import execution_order, run_prompt

ROOT = Path(__file__).resolve().parents[1]
WF = ROOT / "example_workflows"
sys.path.insert(0, str(ROOT / "scripts"))
import make_workflows  # noqa: E402

UI_FILES = sorted(WF.glob("*.json"))
NAMES = [p.stem for p in UI_FILES]
SEED_MODES = {"fixed", "increment", "decrement", "randomize"}


def test_the_expected_workflows_exist_with_thumbnails_and_api_twins():
    assert {"one4d_embedded_cpu"} | {f"one4d_{kind}_{size}" for size in ("wan14b", "wan1_3b") for kind in (
        "image_to_4d", "sparse_frames_to_4d", "video_to_4d", "text_to_4d")} <= set(NAMES)
    for name in NAMES:
        assert (WF / "api" / f"{name}.json").is_file(), name
        thumb = WF / f"{name}.jpg"
        assert thumb.is_file() and thumb.read_bytes()[:3] == b"\xff\xd8\xff", f"{name}.jpg thumbnail missing or not a JPEG"


def test_files_are_what_the_generator_writes():
    built = make_workflows.build_all()
    assert sorted(built) == NAMES
    for name, (ui, api) in built.items():
        assert json.loads((WF / f"{name}.json").read_text()) == ui, f"{name}.json is stale: run scripts/make_workflows.py"
        assert json.loads((WF / "api" / f"{name}.json").read_text()) == api, f"api/{name}.json is stale"


def _widgets_from_input_types(cls) -> list[tuple[str, object, dict]]:
    """Widget inputs of a node class in the order the frontend creates them (independent of the generator)."""
    spec = cls.INPUT_TYPES()
    out = []
    for group in ("required", "optional"):
        for name, value in spec.get(group, {}).items():
            kind, opts = value[0], (value[1] if len(value) > 1 else {})
            if isinstance(kind, list) or (kind in ("INT", "FLOAT", "STRING", "BOOLEAN") and not opts.get("forceInput")):
                out.append((name, kind, opts))
    return out


def _check_value(node_type: str, name: str, kind, opts: dict, value) -> None:
    where = f"{node_type}.{name} = {value!r}"
    if isinstance(kind, list):
        if name in ("dit_name", "vae_name", "one4d_weights", "lora_name"):  # model lists differ per machine
            assert isinstance(value, str) and (value.endswith(".safetensors") or value in kind), where
        else:
            assert value in kind, where
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool), where
        assert opts.get("min", value) <= value <= opts.get("max", value), where
    elif kind == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
        assert opts.get("min", value) <= value <= opts.get("max", value), where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    elif kind == "STRING":
        assert isinstance(value, str), where


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_matches_node_definitions(name):
    wf = json.loads((WF / f"{name}.json").read_text())
    links = {l[0]: l for l in wf["links"]}
    by_id = {n["id"]: n for n in wf["nodes"]}
    for node in wf["nodes"]:
        t = node["type"]
        assert t in nodes.NODE_CLASS_MAPPINGS or t in make_workflows.CORE_NODES or t in make_workflows.FRONTEND_NODES, \
            f"unknown node type {t}"
        values = list(node.get("widgets_values", []))
        if t in nodes.NODE_CLASS_MAPPINGS:
            cls = nodes.NODE_CLASS_MAPPINGS[t]
            expected = _widgets_from_input_types(cls)
            i = 0
            for wname, kind, opts in expected:
                assert i < len(values), f"{t}: widgets_values has no value for {wname}"
                _check_value(t, wname, kind, opts, values[i])
                i += 1
                if opts.get("control_after_generate"):
                    assert values[i] in SEED_MODES, f"{t}.{wname}: control_after_generate value {values[i]!r}"
                    i += 1
            assert i == len(values), f"{t}: {len(values)} widget values for {i} widgets"
            sockets = [n for n in cls.INPUT_TYPES().get("required", {}) if n not in {w[0] for w in expected}]
            sockets += [n for n in cls.INPUT_TYPES().get("optional", {}) if n not in {w[0] for w in expected}]
            assert [s["name"] for s in node["inputs"]] == sockets, f"{t}: input slots"
            assert [o["type"] for o in node["outputs"]] == list(cls.RETURN_TYPES), f"{t}: output types"
            required = [n for n in cls.INPUT_TYPES()["required"] if n in sockets]
            linked = {s["name"] for s in node["inputs"] if s["link"] is not None}
            assert set(required) <= linked, f"{t}: required inputs {set(required) - linked} are not connected"
        else:
            spec = make_workflows.CORE_NODES.get(t) or make_workflows.FRONTEND_NODES[t]
            n_expected = len(spec["widgets"]) + sum(1 for w in spec["widgets"] if w[2].get("upload"))
            assert len(values) == n_expected, f"{t}: {len(values)} widget values, expected {n_expected}"
            for wname, value in _named_values(spec["widgets"], values).items():
                kind, opts = next((k, o) for n, k, o in spec["widgets"] if n == wname)
                if kind == "COMBO":
                    assert value in opts["options"], f"{t}.{wname} = {value!r}"
                elif kind in ("INT", "FLOAT", "BOOLEAN", "STRING"):
                    _check_value(t, wname, kind, opts, value)
                elif kind == "FILE":
                    assert isinstance(value, str) and "." in value, f"{t}.{wname} = {value!r}"
        for slot, inp in enumerate(node["inputs"]):
            if inp["link"] is not None:
                link = links[inp["link"]]
                assert link[3] == node["id"] and link[4] == slot, f"link {link} does not end at {t}.{inp['name']}"
                src = by_id[link[1]]
                assert src["outputs"][link[2]]["type"] == inp["type"] == link[5], f"type mismatch on link {link}"
                assert inp["link"] in src["outputs"][link[2]]["links"]


def _named_values(widgets, values) -> dict:
    """``widgets_values`` by widget name, skipping the frontend-only entries (seed control, upload button)."""
    out, i = {}, 0
    for name, _kind, opts in widgets:
        out[name] = values[i]
        i += 1 + bool(opts.get("control_after_generate")) + bool(opts.get("upload"))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_api_twin_matches_ui_workflow(name):
    ui = json.loads((WF / f"{name}.json").read_text())
    api = json.loads((WF / "api" / f"{name}.json").read_text())
    active = [n for n in ui["nodes"] if n["mode"] != 4 and n["type"] not in make_workflows.FRONTEND_NODES]  # notes never run
    assert set(api) == {str(n["id"]) for n in active}
    for node in active:
        entry = api[str(node["id"])]
        assert entry["class_type"] == node["type"]
        if node["type"] in nodes.NODE_CLASS_MAPPINGS:
            named = _named_values(_widgets_from_input_types(nodes.NODE_CLASS_MAPPINGS[node["type"]]), node["widgets_values"])
        else:
            named = _named_values(make_workflows.CORE_NODES[node["type"]]["widgets"], node["widgets_values"])
        assert {k: entry["inputs"][k] for k in named} == named, node["type"]
        links = {k for k, v in entry["inputs"].items() if isinstance(v, list)}
        assert links == {s["name"] for s in node["inputs"] if s["link"] is not None}, node["type"]
    execution_order(api)  # every link resolves, no cycle


@pytest.fixture()
def dirs(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    return tmp_path


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_runs_on_the_embedded_model(name, dirs):
    prompt = embedded_version(json.loads((WF / "api" / f"{name}.json").read_text()))
    classes = dict(nodes.NODE_CLASS_MAPPINGS, **CORE)
    results = run_prompt(prompt, classes)
    save = [nid for nid, n in prompt.items() if n["class_type"] == "One4DSave4D"]
    assert save, "every example saves its 4D result"
    out = dirs / "output"
    for nid in save:
        ui = results[nid]["ui"]
        files = ui["one4d_files"] + ui["one4d_preview"]
        for ref in files:
            path = out / ref["subfolder"] / ref["filename"]
            assert path.exists() and (path.is_dir() or path.stat().st_size > 0), path
        model_file = results[nid]["outputs"][0]
        assert model_file.endswith(".glb") and (out / model_file).is_file()
    for nid, node in prompt.items():
        if node["class_type"] == "SaveAnimatedWEBP":
            ref = results[nid]["ui"]["images"][0]
            assert (out / ref["subfolder"] / ref["filename"]).stat().st_size > 0
