"""ComfyUI's "unload models" (POST /free) also drops the pack's model cache."""
from __future__ import annotations

from types import SimpleNamespace

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
