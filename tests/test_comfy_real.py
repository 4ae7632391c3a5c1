"""Against a real ComfyUI (skipped unless ``ONE4D_COMFYUI_DIR`` points to a ComfyUI checkout).

Starts ``main.py --cpu`` with a fresh base directory whose ``custom_nodes`` holds this pack (a symlink),
then checks that the pack imported without "IMPORT FAILED", that ``/object_info`` lists every node (and
that the core nodes used by the examples have the widgets the examples were written for), and runs the
embedded example workflow through ``/prompt`` with the stdlib client.

``ONE4D_COMFYUI_PYTHON`` picks the interpreter of ComfyUI's own environment (default: this one); the
environment (e.g. ``PYTHONPATH``) is passed on. ``ONE4D_COMFYUI_LOG`` keeps the server log at that path.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMFY = os.environ.get("ONE4D_COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFY, reason="set ONE4D_COMFYUI_DIR to a ComfyUI checkout to run these")
PACK = "ComfyUI-One4D"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy_base")
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK).symlink_to(ROOT, target_is_directory=True)
    port = _free_port()
    log_path = Path(os.environ.get("ONE4D_COMFYUI_LOG") or base / "comfyui.log")
    python = os.environ.get("ONE4D_COMFYUI_PYTHON") or sys.executable
    cmd = [python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
           "--base-directory", str(base)]
    t0 = time.time()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=COMFY, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        while time.time() - t0 < 240:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(url + "/system_stats", timeout=2).read()
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("ComfyUI did not start within 240 s")
        yield {"url": url, "port": port, "log": log_path, "base": base, "startup_s": time.time() - t0}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_pack_imports_without_import_failed(server):
    log = server["log"].read_text()
    pack_lines = [line for line in log.splitlines() if PACK in line]
    assert any(re.search(r"\d+\.\d+ seconds: .*" + PACK, line) for line in pack_lines), "\n".join(pack_lines) or log[-3000:]
    assert not any("IMPORT FAILED" in line for line in pack_lines), "\n".join(pack_lines)
    assert "Cannot import" not in "\n".join(pack_lines)


def test_nodes_run_on_the_v3_schema_with_their_declared_inputs(server):
    """Every node is registered on core's V3 schema (nodes/v3.py) and /object_info shows its one V1 declaration:
    the same inputs in the same order (widget order of saved workflows), types, defaults, limits and outputs."""
    import nodes

    log = server["log"].read_text()
    assert f"One4D: {len(nodes.NODE_CLASS_MAPPINGS)} nodes on core's V3 schema (comfy_api.latest)" in log, log[-3000:]
    info = json.loads(urllib.request.urlopen(server["url"] + "/object_info", timeout=60).read())
    for name, cls in nodes.NODE_CLASS_MAPPINGS.items():
        declared, shown = cls.INPUT_TYPES(), info[name]
        for section in ("required", "optional"):
            assert shown["input_order"].get(section, []) == list(declared.get(section, {})), (name, section)
            for key, (kind, *options) in declared.get(section, {}).items():
                got = shown["input"][section][key]
                if isinstance(kind, (list, tuple)):  # V3 shows a combo as "COMBO" with its options
                    assert got[0] == "COMBO" and got[1]["options"] == list(kind), (name, key, got)
                else:
                    assert got[0] == kind, (name, key, got[0])
                for option, value in (options[0] if options else {}).items():
                    assert got[1].get(option) == value, (name, key, option, got[1].get(option), value)
        assert shown["output"] == list(cls.RETURN_TYPES), name
        assert shown["output_name"] == list(getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES), name
        assert shown["output_node"] == bool(getattr(cls, "OUTPUT_NODE", False)), name


def test_object_info_lists_every_node_and_the_core_widgets_of_the_examples(server):
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_workflows

    import nodes

    info = json.loads(urllib.request.urlopen(server["url"] + "/object_info", timeout=60).read())
    missing = [n for n in nodes.NODE_CLASS_MAPPINGS if n not in info]
    assert not missing, f"not in /object_info: {missing}"
    for name in nodes.NODE_CLASS_MAPPINGS:
        assert info[name]["display_name"] == nodes.NODE_DISPLAY_NAME_MAPPINGS[name]
        assert info[name]["category"].startswith("One4D/")
    # what core's 3D nodes take: Preview3D a STRING path (Save 4D's outputs), Load3D an upload widget
    assert info["Preview3D"]["input"]["required"]["model_file"][0] == "STRING"
    assert isinstance(info["Load3D"]["input"]["required"]["model_file"][0], list)
    assert info["One4DSave4D"]["output"] == ["STRING", "STRING"]
    assert info["One4DSave4D"]["output_name"] == ["model_file", "ply_file"]
    for name, spec in make_workflows.CORE_NODES.items():
        assert name in info, f"core node {name} used by the examples is missing"
        order = info[name].get("input_order", {})
        declared = order.get("required", []) + order.get("optional", [])
        widgets = [w[0] for w in spec["widgets"]]
        sockets = [s[0] for s in spec["inputs"]]
        assert [n for n in declared if n in widgets] == widgets, f"{name}: widget order {declared}"
        assert set(sockets) <= set(declared), f"{name}: sockets {sockets} vs {declared}"
        assert [o for o in info[name]["output"]] == [t for _, t in spec["outputs"]], f"{name}: outputs"
    for wf in (ROOT / "example_workflows").glob("*.json"):
        types = {n["type"] for n in json.loads(wf.read_text())["nodes"]} - set(make_workflows.FRONTEND_NODES)
        assert types <= set(info), f"{wf.name}: {types - set(info)}"


def test_embedded_workflow_runs_through_prompt(server, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from comfy_client import ComfyClient

    client = ComfyClient(f"127.0.0.1:{server['port']}", timeout=60)
    client.upload_image(ROOT / "one4d" / "assets" / "sample.png")  # (also copied there when the pack loads)
    prompt = json.loads((ROOT / "example_workflows" / "api" / "one4d_embedded_cpu.json").read_text())
    prompt["3"]["inputs"]["image"] = "sample.png"
    save_id = next(k for k, n in prompt.items() if n["class_type"] == "One4DSave4D")
    # Save 4D's outputs wired into core Preview3D, whose model_file takes a path relative to the output folder
    prompt["90"] = {"class_type": "Preview3D", "inputs": {"model_file": [save_id, 0]}}
    prompt["91"] = {"class_type": "Preview3D", "inputs": {"model_file": [save_id, 1]}}
    t0 = time.time()
    entry, files = client.run(prompt, tmp_path, timeout=600, log=lambda *_: None)
    elapsed = time.time() - t0
    assert elapsed < 60, f"the embedded workflow took {elapsed:.0f} s on this CPU"
    names = {p.name for p in files}
    assert any(n.endswith(".o4dp") for n in names) and any(n.endswith(".glb") for n in names), names
    payload = next(p for p in files if p.suffix == ".o4dp")
    assert payload.read_bytes()[:4] == b"O4DP"
    save = entry["outputs"][save_id]
    assert save["one4d_preview"][0]["type"] == "output" and save["3d"][0]["filename"].endswith(".glb")
    glb, ply = entry["outputs"]["90"]["result"][0], entry["outputs"]["91"]["result"][0]
    assert glb.endswith(".glb") and ply.endswith(".ply") and glb[:-4] == ply[:-4], (glb, ply)
    for path in (glb, ply):
        assert (server["base"] / "output" / path).is_file(), path
    print(f"\nComfyUI start {server['startup_s']:.1f} s; embedded workflow {elapsed:.1f} s through /prompt")


def test_cancel_during_sampling_stops_the_prompt_and_writes_nothing(server, tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    from comfy_client import ComfyClient, ComfyError

    client = ComfyClient(f"127.0.0.1:{server['port']}", timeout=60)
    prompt = json.loads((ROOT / "example_workflows" / "api" / "one4d_embedded_cpu.json").read_text())
    prompt["5"]["inputs"].update(steps=200, seed=123)  # long enough to press Cancel in the middle
    prompt["8"]["inputs"]["filename_prefix"] = "one4d/cancelled"
    log = server["log"]
    marker = "One4D: image conditioning"
    before = log.read_text().count(marker)
    prompt_id = client.queue_prompt(prompt)
    t0 = time.time()
    while log.read_text().count(marker) == before and time.time() - t0 < 120:
        time.sleep(0.2)
    time.sleep(1.0)  # sampling is under way
    client.post_json("/interrupt", {})
    with pytest.raises(ComfyError) as info:
        client.wait(prompt_id, timeout=120)
    kinds = [m[0] for m in info.value.details["status"]["messages"]]
    assert "execution_interrupted" in kinds and "execution_error" not in kinds, kinds
    cancelled = re.findall(r"sampling stopped by the user after (\d+) of 200 steps", log.read_text())
    assert cancelled and int(cancelled[-1]) < 200, "the sampler stopped mid-way"
    print(f"\ncancelled after {cancelled[-1]} of 200 steps")
    assert not list((server["base"] / "output").rglob("cancelled*"))
