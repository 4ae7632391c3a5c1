"""Import direction: each layer of the library imports only layers below it, and the nodes use only public
library names. Every import counts, at module level or inside a function (parsed, not executed).

Layers, bottom to top (docs/architecture.md): foundation (errors, defaults, pointmap, progress) < geometry <
export, data < core (backbone, dlc, umc, codec, sampling, weights, models, pipeline, ...) < evaluation <
training (with the embedded recipe) < bench < cli. The nodes stand on the core and below.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOUNDATION, GEOMETRY, IO, CORE, EVALUATION, TRAINING, BENCH, CLI = range(8)
LAYERS: dict[str, int] = {
    "one4d.errors": FOUNDATION,
    "one4d.defaults": FOUNDATION,
    "one4d.pointmap": FOUNDATION,
    "one4d.progress": FOUNDATION,
    "one4d.geometry": GEOMETRY,
    "one4d.export": IO,
    "one4d.data": IO,
    "one4d": CORE,
    "one4d.backbone": CORE,
    "one4d.codec": CORE,
    "one4d.dlc": CORE,
    "one4d.long_video": CORE,
    "one4d.lora_styles": CORE,
    "one4d.models": CORE,
    "one4d.pipeline": CORE,
    "one4d.precision": CORE,
    "one4d.gguf_weights": CORE,
    "one4d.request": CORE,
    "one4d.sampling": CORE,
    "one4d.sharding": CORE,
    "one4d.text": CORE,
    "one4d.umc": CORE,
    "one4d.umt5": CORE,
    "one4d.weights": CORE,
    "one4d.assets": CORE,
    "one4d.evaluation": EVALUATION,
    "one4d.training": TRAINING,
    "one4d.bench": BENCH,
    "one4d.cli": CLI,
    "one4d.__main__": CLI,
}
NODES_MAY_USE = CORE
COMFY = ("comfy", "comfy_api", "comfy_execution", "folder_paths", "server", "latent_preview", "nodes")


def layer_of(module: str) -> int | None:
    """The layer of a library module: its longest listed prefix (None: not in any layer). The package
    ``one4d`` itself is listed, but is no prefix: a new top-level module must be placed in a layer."""
    if module == "one4d":
        return LAYERS[module]
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in LAYERS:
            return LAYERS[".".join(parts[:n])]
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """``(absolute module, imported names)`` for every import statement of a file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            names = [a.name for a in node.names]
            out.append((base, names))
            # ``from . import x`` imports the submodule x
            out += [(f"{base}.{n}", []) for n in names if (ROOT / Path(*base.split("."), n)).exists()
                    or (ROOT / Path(*base.split("."), f"{n}.py")).exists()]
    return out


def library_violations(edges: dict[str, list[str]]) -> list[str]:
    """Edges ``importer -> imported`` among one4d modules that go upward or touch an unlisted module."""
    bad = []
    for importer, targets in edges.items():
        own = layer_of(importer)
        for target in targets:
            if target.split(".")[0] in COMFY:
                bad.append(f"{importer} imports ComfyUI ({target})")
            if not target.startswith("one4d"):
                continue
            theirs = layer_of(target)
            if own is None or theirs is None:
                bad.append(f"{importer} -> {target}: module not in any layer (add it to LAYERS and docs/architecture.md)")
            elif theirs > own:
                bad.append(f"{importer} (layer {own}) imports {target} (layer {theirs}), a layer above it")
    return bad


def library_edges() -> dict[str, list[str]]:
    return {module_name(p): [m for m, _ in imports_of(p)] for p in (ROOT / "one4d").rglob("*.py")}


def test_library_imports_point_down():
    assert library_violations(library_edges()) == []


def test_the_check_catches_an_upward_import():
    """The core importing the demo model, the evaluation or the command line is reported."""
    assert library_violations({"one4d.pipeline": ["one4d.embedded"]})  # a demo-model module outside the layers
    assert library_violations({"one4d.pipeline": ["one4d.training.recipe"]})
    assert library_violations({"one4d.sampling": ["one4d.evaluation.suite"]})
    assert library_violations({"one4d.geometry.result": ["one4d.pipeline"]})
    assert library_violations({"one4d.umc": ["comfy.model_management"]})
    assert not library_violations({"one4d.cli.run": ["one4d.pipeline", "one4d.export.video"]})


@pytest.mark.parametrize("path", sorted((ROOT / "nodes").glob("*.py")), ids=lambda p: p.name)
def test_nodes_use_only_public_core_names(path):
    for module, names in imports_of(path):
        if not module.startswith("one4d"):
            continue
        assert not any(part.startswith("_") for part in module.split(".")), f"{path.name} imports private module {module}"
        assert not [n for n in names if n.startswith("_")], f"{path.name} imports private names {names} from {module}"
        layer = layer_of(module)
        assert layer is not None and layer <= NODES_MAY_USE, f"{path.name} imports {module} (training, evaluation, bench or cli)"
