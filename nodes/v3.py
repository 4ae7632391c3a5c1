"""The pack's nodes on core's V3 node schema (``comfy_api.latest``), generated from their one declaration.

Each node is declared once, in the V1 form (``INPUT_TYPES``, ``RETURN_TYPES``, ``RETURN_NAMES``,
``OUTPUT_TOOLTIPS``, ``FUNCTION``, ``CATEGORY``, ``DESCRIPTION``, ``OUTPUT_NODE``): that form needs no
ComfyUI, so the same classes run in the tests, the headless runner and the scripts. Inside ComfyUI,
:func:`v3_mappings` turns every class into an ``io.ComfyNode`` whose ``io.Schema`` is built from that
declaration (same node id, inputs in the same order with the same names, types, defaults and limits, same
outputs) and whose ``execute`` calls the declared function and wraps its result in an ``io.NodeOutput``.
ComfyUI then loads and runs the nodes as V3 nodes. Nothing here is written twice by hand: a new input is
added to ``INPUT_TYPES`` and appears in both forms.

Decided by testing (docs/nodes.md, "Node schema"): a V3 node registered through ``NODE_CLASS_MAPPINGS``,
with a custom socket type, widgets, an optional input, a STRING output and a UI dict, loads and runs on
ComfyUI 0.3.64 and on its October 2025 master with the same ``/object_info``. ``comfy_api.latest`` is not
a frozen API (it changed between those two), so if building the V3 classes fails on some other version,
the pack registers the V1 classes, which every ComfyUI runs, and logs why once.

The ``io`` module is passed in (from :func:`nodes.comfy_bridge.v3_io`): this module imports nothing of
ComfyUI itself, and the tests drive it with a stand-in.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("one4d")

# V1 widget kinds -> (io class name, the V1 options it takes, all passed on as keyword arguments of the
# same name). Options outside these lists have no mapping: building fails and names them.
WIDGETS: dict[str, tuple[str, frozenset[str]]] = {
    "INT": ("Int", frozenset({"default", "min", "max", "step", "control_after_generate", "tooltip"})),
    "FLOAT": ("Float", frozenset({"default", "min", "max", "step", "round", "tooltip"})),
    "STRING": ("String", frozenset({"default", "multiline", "tooltip"})),
    "BOOLEAN": ("Boolean", frozenset({"default", "tooltip"})),
}
COMBO_OPTIONS = frozenset({"default", "tooltip", "control_after_generate"})
SOCKET_OPTIONS = frozenset({"tooltip"})


class V3SchemaError(TypeError):
    """A V1 declaration that has no V3 counterpart here."""


def _checked(node_id: str, name: str, options: dict, allowed: frozenset[str]) -> dict:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise V3SchemaError(f"{node_id}.{name}: option(s) {unknown} have no V3 mapping in nodes/v3.py")
    return dict(options)


def v3_input(io: Any, node_id: str, name: str, declaration: tuple, optional: bool) -> Any:
    """The ``io`` input for one V1 input declaration ``(type, options)``."""
    kind = declaration[0]
    options = declaration[1] if len(declaration) > 1 else {}
    if isinstance(kind, (list, tuple)):  # a combo: the list of choices
        return io.Combo.Input(name, options=list(kind), optional=optional,
                              **_checked(node_id, name, options, COMBO_OPTIONS))
    if kind in WIDGETS:
        cls_name, allowed = WIDGETS[kind]
        return getattr(io, cls_name).Input(name, optional=optional, **_checked(node_id, name, options, allowed))
    # a socket: core types (IMAGE, LATENT, CONDITIONING, ...) and the pack's own types alike
    return io.Custom(kind).Input(name, optional=optional, **_checked(node_id, name, options, SOCKET_OPTIONS))


def v3_schema(io: Any, node_id: str, cls: type, display_name: str) -> Any:
    """The ``io.Schema`` of a V1-declared node class."""
    declared = cls.INPUT_TYPES()
    extra = sorted(set(declared) - {"required", "optional"})
    if extra:
        raise V3SchemaError(f"{node_id}: input section(s) {extra} have no V3 mapping in nodes/v3.py")
    inputs = [v3_input(io, node_id, name, decl, section == "optional")
              for section in ("required", "optional") for name, decl in declared.get(section, {}).items()]
    types = tuple(cls.RETURN_TYPES)
    names = tuple(getattr(cls, "RETURN_NAMES", None) or types)
    tips = tuple(getattr(cls, "OUTPUT_TOOLTIPS", None) or (None,) * len(types))
    outputs = [io.Custom(t).Output(display_name=n, tooltip=tip) for t, n, tip in zip(types, names, tips)]
    return io.Schema(node_id=node_id, display_name=display_name, category=cls.CATEGORY,
                     description=getattr(cls, "DESCRIPTION", ""), inputs=inputs, outputs=outputs,
                     is_output_node=bool(getattr(cls, "OUTPUT_NODE", False)))


def v3_result(io: Any, result: Any) -> Any:
    """A V1 function's return value (a tuple, or ``{"ui": ..., "result": (...)}``) as an ``io.NodeOutput``."""
    if isinstance(result, dict):
        return io.NodeOutput(*result.get("result", ()), ui=result.get("ui"))
    return io.NodeOutput(*result)


def v3_node(io: Any, node_id: str, cls: type, display_name: str) -> type:
    """An ``io.ComfyNode`` subclass that declares itself from ``cls`` and runs ``cls``'s function."""

    def define_schema(_node):
        return v3_schema(io, node_id, cls, display_name)

    def execute(_node, **inputs):
        return v3_result(io, getattr(cls(), cls.FUNCTION)(**inputs))

    return type(cls.__name__, (io.ComfyNode,), {
        "__doc__": cls.__doc__, "__module__": cls.__module__, "DECLARED_BY": cls,
        "define_schema": classmethod(define_schema), "execute": classmethod(execute),
    })


def v3_mappings(mappings: dict[str, type], display_names: dict[str, str], io: Any,
                check: Callable[[type], Any] | None = None) -> dict[str, type]:
    """``NODE_CLASS_MAPPINGS`` with every class on the V3 schema; each schema is built once here (through
    ``check``, ComfyUI's ``GET_SCHEMA`` by default) so that a problem shows at load time."""
    out = {}
    for node_id, cls in mappings.items():
        node = v3_node(io, node_id, cls, display_names[node_id])
        (check or (lambda n: n.GET_SCHEMA()))(node)
        out[node_id] = node
    return out


def register(mappings: dict[str, type], display_names: dict[str, str], io: Any) -> dict[str, type]:
    """The mappings ComfyUI gets: V3 where ``io`` is there and takes every declaration, else the V1 classes."""
    if io is None:
        log.info("One4D: comfy_api.latest not found; the nodes use the V1 schema")
        return mappings
    try:
        v3 = v3_mappings(mappings, display_names, io)
    except Exception as exc:  # noqa: BLE001 - an API change in comfy_api.latest must not stop the pack from loading
        log.warning("One4D: the nodes use the V1 schema, since core's V3 schema (comfy_api.latest) did not take "
                    "them on this ComfyUI: %s: %s", type(exc).__name__, exc)
        return mappings
    log.info("One4D: %d nodes on core's V3 schema (comfy_api.latest)", len(v3))
    return v3
