"""ComfyUI integration of the model files: "unload models" (POST /free) also drops the pack's cache, and the
models/one4d folder exists and is named when a file is missing."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from one4d.errors import One4DInputError

import nodes
from nodes import cache, comfy_bridge


def test_unload_all_models_also_clears_the_pack_cache(monkeypatch):
    calls = []
    fake_mm = SimpleNamespace(unload_all_models=lambda: calls.append("comfy"), current_loaded_models=[],
                              soft_empty_cache=lambda: None)
    monkeypatch.setattr(comfy_bridge, "_mm", fake_mm)
    monkeypatch.setattr(comfy_bridge, "HAVE_COMFY", True)
    comfy_bridge.on_unload_models(cache.clear_cache)
    comfy_bridge.on_unload_models(cache.clear_cache)  # registering twice wraps once and calls once

    monkeypatch.setattr(comfy_bridge, "HAVE_COMFY", False)  # load the embedded model without ComfyUI
    nodes.One4DLoadBackbone().load(cache.EMBEDDED, cache.EMBEDDED)
    assert cache._DIT is not None and cache._VAE is not None
    monkeypatch.setattr(comfy_bridge, "HAVE_COMFY", True)

    def failing():
        raise RuntimeError("boom")

    comfy_bridge.on_unload_models(failing)  # a failing hook is logged, never raised
    fake_mm.unload_all_models()  # what main.py's prompt worker calls for POST /free
    assert calls == ["comfy"]
    assert cache._DIT is None and cache._VAE is None


def test_the_one4d_model_folder_is_created_and_named_in_errors(tmp_path, monkeypatch):
    fake_fp = SimpleNamespace(
        models_dir=str(tmp_path / "models"),
        folder_names_and_paths={},
        add_model_folder_path=lambda name, path, is_default=False: fake_fp.folder_names_and_paths.setdefault(name, ([path], set())),
        get_full_path=lambda folder, name: None,
        get_folder_paths=lambda folder: fake_fp.folder_names_and_paths[folder][0],
    )
    monkeypatch.setattr(comfy_bridge, "_fp", fake_fp)
    monkeypatch.setattr(comfy_bridge, "HAVE_COMFY", True)
    comfy_bridge.register_model_folder()
    assert (tmp_path / "models" / "one4d").is_dir()
    assert fake_fp.folder_names_and_paths["one4d"][1] == {".safetensors"}
    with pytest.raises(One4DInputError, match=f"was not found in models/one4d \\({tmp_path / 'models' / 'one4d'}\\)"):
        comfy_bridge.model_path("one4d", "missing.safetensors")
