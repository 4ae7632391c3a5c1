"""nodes/v3.py: the nodes' V3 schema (comfy_api.latest) generated from their one V1 declaration.

Without ComfyUI, the generator is driven with a stand-in ``io`` that records what it is asked to build: every
node keeps its id, its inputs in the same order with the same names, types and options, and its outputs.
tests/test_comfy_real.py checks the same against a real ComfyUI's /object_info.
"""
from __future__ import annotations

import logging

import pytest

import nodes
from nodes import v3


class _Kind:
    """Stands in for io.Int, io.Combo, io.Custom("IMAGE"), ...: records Input/Output calls."""

    def __init__(self, kind: str):
        self.kind = kind

    def Input(self, id, optional=False, **options):
        return {"kind": self.kind, "name": id, "optional": optional, "options": options}

    def Output(self, display_name=None, tooltip=None):
        return {"kind": self.kind, "name": display_name, "tooltip": tooltip}


class FakeIO:
    Int, Float, String, Boolean, Combo = (_Kind(k) for k in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"))

    @staticmethod
    def Custom(io_type):
        return _Kind(io_type)

    class Schema:
        def __init__(self, **fields):
            self.__dict__.update(fields)

    class NodeOutput:
        def __init__(self, *args, ui=None):
            self.args, self.ui = args, ui

    class ComfyNode:
        @classmethod
        def GET_SCHEMA(cls):
            return cls.define_schema()


def _v1_inputs(cls):
    out = []
    for section in ("required", "optional"):
        for name, decl in cls.INPUT_TYPES().get(section, {}).items():
            kind = "COMBO" if isinstance(decl[0], (list, tuple)) else decl[0]
            options = dict(decl[1]) if len(decl) > 1 else {}
            if kind == "COMBO":
                options = {"options": list(decl[0]), **options}
            out.append({"kind": kind, "name": name, "optional": section == "optional", "options": options})
    return out


@pytest.mark.parametrize("node_id", sorted(nodes.NODE_CLASS_MAPPINGS))
def test_every_node_keeps_id_inputs_widget_order_and_outputs(node_id):
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    node = v3.v3_node(FakeIO, node_id, cls, nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id])
    schema = node.GET_SCHEMA()
    assert (schema.node_id, schema.display_name, schema.category) == (
        node_id, nodes.NODE_DISPLAY_NAME_MAPPINGS[node_id], cls.CATEGORY)
    assert schema.description == cls.DESCRIPTION and schema.is_output_node == bool(getattr(cls, "OUTPUT_NODE", False))
    assert schema.inputs == _v1_inputs(cls)  # names, order, types, defaults, limits, tooltips, optional
    names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
    tips = getattr(cls, "OUTPUT_TOOLTIPS", None) or (None,) * len(cls.RETURN_TYPES)
    assert schema.outputs == [{"kind": t, "name": n, "tooltip": tip} for t, n, tip in zip(cls.RETURN_TYPES, names, tips)]
    assert node.__name__ == cls.__name__ and node.DECLARED_BY is cls


class _Declared:
    """A V1-declared node, to run through the generated V3 class."""

    CATEGORY = "One4D/test"
    DESCRIPTION = "test node"
    RETURN_TYPES = ("STRING", "INT")
    FUNCTION = "run"
    calls: list = []  # noqa: RUF012 - a record shared by the instances ComfyUI makes

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "a"})}, "optional": {"n": ("INT", {"default": 1})}}

    def run(self, text, n=1):
        _Declared.calls.append((text, n))
        if text == "ui":
            return {"ui": {"one4d_preview": [{"filename": "x.o4dp"}]}, "result": (text, n)}
        return (text, n)


def test_execute_calls_the_declared_function_and_wraps_its_result():
    node = v3.v3_node(FakeIO, "One4DTest", _Declared, "One4D Test")
    plain = node.execute(text="b", n=3)
    assert plain.args == ("b", 3) and plain.ui is None
    with_ui = node.execute(text="ui")  # an optional input left out is not passed
    assert with_ui.args == ("ui", 1) and with_ui.ui == {"one4d_preview": [{"filename": "x.o4dp"}]}
    assert _Declared.calls[-2:] == [("b", 3), ("ui", 1)]
    assert v3.v3_result(FakeIO, {"ui": {"a": 1}}).args == ()  # an output node with no outputs


def test_register_uses_v3_where_it_builds_and_v1_otherwise(caplog):
    mappings, names = {"One4DTest": _Declared}, {"One4DTest": "One4D Test"}
    with caplog.at_level(logging.INFO, logger="one4d"):
        assert v3.register(mappings, names, None) is mappings
        built = v3.register(mappings, names, FakeIO)
    assert issubclass(built["One4DTest"], FakeIO.ComfyNode)
    assert "1 nodes on core's V3 schema" in caplog.text

    class BrokenIO(FakeIO):  # a comfy_api.latest whose Schema changed incompatibly
        class Schema:
            def __init__(self, **fields):
                raise TypeError("Schema() got an unexpected keyword argument 'node_id'")

    with caplog.at_level(logging.WARNING, logger="one4d"):
        assert v3.register(mappings, names, BrokenIO) is mappings
    assert "use the V1 schema" in caplog.text and "unexpected keyword argument" in caplog.text


def test_a_declaration_without_a_v3_mapping_is_named():
    class Odd(_Declared):
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {"image": ("IMAGE", {"forceInput": True})}}

    with pytest.raises(v3.V3SchemaError, match=r"One4DOdd\.image: option\(s\) \['forceInput'\]"):
        v3.v3_schema(FakeIO, "One4DOdd", Odd, "odd")

    class Hidden(_Declared):
        @classmethod
        def INPUT_TYPES(cls):
            return {"required": {}, "hidden": {"prompt": "PROMPT"}}

    with pytest.raises(v3.V3SchemaError, match=r"input section\(s\) \['hidden'\]"):
        v3.v3_schema(FakeIO, "One4DHidden", Hidden, "hidden")
