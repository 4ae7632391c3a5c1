"""Run an API-format workflow through node classes in dependency order, without ComfyUI.

Used by the tests (every example workflow runs on the embedded model this way) and handy for scripts. It
follows what ComfyUI's executor does for V1 nodes: inputs are either literal widget values or links
``[node_id, output_index]``; a node runs after the nodes it links to; ``FUNCTION`` is called with the inputs
as keyword arguments; a return value is a tuple of outputs, or a dict with ``result`` and ``ui``.
Widget values that are not inputs of the class (``control_after_generate`` lives only in the UI format)
are not expected here. Node types missing from ``classes`` raise a KeyError naming them.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Optional


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def execution_order(prompt: Mapping[str, dict]) -> list[str]:
    """Node ids in an order where every node comes after the nodes it takes inputs from."""
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node_id: str, path: tuple) -> None:
        if state.get(node_id) == 2:
            return
        if state.get(node_id) == 1:
            raise ValueError(f"the workflow has a cycle through node {node_id}: {' -> '.join(path + (node_id,))}")
        if node_id not in prompt:
            raise KeyError(f"a link points to node {node_id}, which is not in the workflow")
        state[node_id] = 1
        for value in prompt[node_id].get("inputs", {}).values():
            if _is_link(value):
                visit(value[0], path + (node_id,))
        state[node_id] = 2
        order.append(node_id)

    for node_id in sorted(prompt, key=lambda k: (len(k), k)):
        visit(node_id, ())
    return order


def run_prompt(prompt: Mapping[str, dict], classes: Mapping[str, type],
               on_node: Optional[Callable[[str, str], None]] = None) -> dict[str, dict]:
    """Execute every node; returns ``{node_id: {"outputs": tuple, "ui": dict | None}}``."""
    missing = sorted({n["class_type"] for n in prompt.values() if n["class_type"] not in classes})
    if missing:
        raise KeyError(f"node types not available: {', '.join(missing)}")
    results: dict[str, dict] = {}
    for node_id in execution_order(prompt):
        node = prompt[node_id]
        cls = classes[node["class_type"]]
        kwargs = {}
        for name, value in node.get("inputs", {}).items():
            if _is_link(value):
                src, index = value
                kwargs[name] = results[src]["outputs"][index]
            else:
                kwargs[name] = value
        if on_node is not None:
            on_node(node_id, node["class_type"])
        out = getattr(cls(), cls.FUNCTION)(**kwargs)
        ui = None
        if isinstance(out, dict):
            ui = out.get("ui")
            out = tuple(out.get("result", ()))
        results[node_id] = {"outputs": tuple(out) if out is not None else (), "ui": ui}
    return results
