"""The widget's contract with the ComfyUI frontend and server, checked against installed files.

- Every module the widget imports from the frontend (``scripts/app.js``, ``scripts/api.js``, as
  the browser resolves the relative specifier from the URL ComfyUI serves the widget at) exists in
  the installed ``comfyui_frontend_package`` and exports the imported names; the frontend bundle
  also has the methods the widget calls on them.
- Only ``web/js/one4d_preview.js`` matches ComfyUI's extension glob (``**/*.js`` under
  WEB_DIRECTORY): the vendored three.js and the helper modules are ``.mjs`` files that ComfyUI
  serves but does not import as extensions, and the MIME type aiohttp serves ``.mjs`` with is a
  JavaScript one (browsers refuse module scripts of other types).

Set ONE4D_FRONTEND_STATIC to another frontend's ``static`` folder to check that version.
"""
from __future__ import annotations

import ast
import glob
import importlib.util
import mimetypes
import os
import posixpath
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WIDGET = "js/one4d_preview.js"
# The frontend's module shims: `export const NAME = window.comfyAPI...;`
EXPORT_RE = re.compile(r"^\s*export\s+(?:const|let|var|function|class)\s+([A-Za-z_$][\w$]*)", re.M)
EXPORT_LIST_RE = re.compile(r"^\s*export\s*\{([^}]*)\}", re.M)
IMPORT_RE = re.compile(r"""^\s*import\s+(?:([\w$]+)\s*,?\s*)?(?:\{([^}]*)\})?\s*(?:from\s+)?["']([^"']+)["']""", re.M)
DYNAMIC_IMPORT_RE = re.compile(r"""import\(\s*["']([^"']+)["']\s*\)""")
# Methods the widget calls on what it imports, and where: app.registerExtension(...),
# node.addDOMWidget(...) (LGraphNode.prototype), api.apiURL(...).
USED_FRONTEND_METHODS = ["registerExtension", "addDOMWidget", "apiURL"]


def frontend_static() -> Path:
    override = os.environ.get("ONE4D_FRONTEND_STATIC")
    if override:
        return Path(override)
    spec = importlib.util.find_spec("comfyui_frontend_package")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("comfyui-frontend-package is not installed: install the test extra (pip install -e '.[test]').")
    return Path(list(spec.submodule_search_locations)[0]) / "static"


def web_directory() -> str:
    """WEB_DIRECTORY from the pack's __init__.py; the architecture's "./web" while it has none."""
    init = REPO / "__init__.py"
    if init.exists():
        for node in ast.walk(ast.parse(init.read_text())):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "WEB_DIRECTORY" for t in node.targets):
                return ast.literal_eval(node.value)
    return "./web"


def widget_url() -> str:
    """The URL path ComfyUI serves the widget at: /extensions/<pack folder>/<path in WEB_DIRECTORY>."""
    web = (REPO / web_directory()).resolve()
    rel = (REPO / "web" / WIDGET).resolve().relative_to(web).as_posix()
    return f"/extensions/ComfyUI-One4D/{rel}"


def resolve(base_url: str, specifier: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_url), specifier))


def static_imports(source: str) -> list[tuple[list[str], str]]:
    out = []
    for default, names, spec in IMPORT_RE.findall(source):
        imported = [default] if default else []
        for part in (names or "").split(","):
            if part.strip():
                imported.append(part.split(" as ")[0].strip())
        out.append((imported, spec))
    return out


def exported_names(source: str) -> set[str]:
    names = set(EXPORT_RE.findall(source))
    for group in EXPORT_LIST_RE.findall(source):
        for part in group.split(","):
            if part.strip():
                names.add(part.split(" as ")[-1].strip())
    return names


def test_frontend_modules_exist_and_export_what_the_widget_imports():
    static = frontend_static()
    assert (static / "index.html").is_file(), f"{static} is not a ComfyUI frontend's static folder"
    source = (REPO / "web" / WIDGET).read_text()
    frontend_imports = [(names, spec) for names, spec in static_imports(source)
                        if not resolve(widget_url(), spec).startswith("/extensions/")]
    assert {resolve(widget_url(), spec) for _, spec in frontend_imports} == {"/scripts/app.js", "/scripts/api.js"}
    for names, spec in frontend_imports:
        path = static / resolve(widget_url(), spec).lstrip("/")
        assert path.is_file(), f"the widget imports {spec!r}, which this frontend does not have ({path})"
        exported = exported_names(path.read_text())
        missing = set(names) - exported
        assert not missing, f"{spec} of this frontend does not export {sorted(missing)} (exports {sorted(exported)})"


def test_frontend_bundle_has_the_methods_the_widget_calls():
    static = frontend_static()
    widget_sources = "".join(p.read_text() for p in (REPO / "web" / "js").glob("*.*js"))
    bundles = list((static / "assets").glob("*.js"))
    assert bundles, f"no frontend bundle under {static / 'assets'}"
    for method in USED_FRONTEND_METHODS:
        assert re.search(rf"\.{method}\s*\(", widget_sources), f"{method} no longer used: update this test"
        needle = re.compile(rf"\b{method}\s*\(|\.{method}\s*=\s*function|\b{method}\s*:")
        assert any(needle.search(b.read_text(errors="replace")) for b in bundles), \
            f"the frontend bundle defines no {method}()"


def test_relative_imports_inside_the_pack_resolve():
    web = REPO / "web"
    for path in list(web.rglob("*.js")) + list(web.rglob("*.mjs")):
        source = path.read_text()
        url = "/extensions/ComfyUI-One4D/" + path.relative_to(web).as_posix()
        specs = [spec for _, spec in static_imports(source)] + DYNAMIC_IMPORT_RE.findall(source)
        for spec in specs:
            target = resolve(url, spec)
            if not target.startswith("/extensions/ComfyUI-One4D/"):
                continue  # the frontend's own modules, checked above
            file = web / target[len("/extensions/ComfyUI-One4D/"):]
            assert file.is_file(), f"{path.name} imports {spec!r}, which does not exist"
            assert file.suffix == ".mjs", f"{spec!r} would be imported by ComfyUI as an extension: use .mjs"


def test_only_the_extension_entry_matches_comfyui_extension_glob():
    web = (REPO / web_directory()).resolve()
    # the pattern of ComfyUI's server.py, GET /extensions: glob(join(dir, "**/*.js"), recursive=True)
    found = sorted(Path(p).relative_to(web).as_posix()
                   for p in glob.glob(os.path.join(glob.escape(str(web)), "**/*.js"), recursive=True))
    assert found == [WIDGET]
    vendor = REPO / "web" / "vendor" / "three"
    for name in ("three.module.mjs", "three.core.mjs", "OrbitControls.mjs", "LICENSE"):
        assert (vendor / name).is_file(), f"web/vendor/three/{name} is missing"


def test_mjs_is_served_as_javascript():
    # aiohttp's static route (ComfyUI serves WEB_DIRECTORY with web.static) guesses types with a
    # fresh mimetypes.MimeTypes(), i.e. Python's built-in table, not the system's or registry's.
    served = mimetypes.MimeTypes().guess_type("three.module.mjs")[0]
    assert served in {"text/javascript", "application/javascript"}
