"""Benchmark and test harness of the 4D preview widget (runs from a source checkout).

- :func:`make_demo_scene`: a synthetic pointmap video (a textured back wall and a ball rolling in
  front of it, seen by a camera that slides sideways) with RGB, valid mask, K and c2w, in the
  pack's conventions (OpenCV axes, world = camera of frame 0).
- :func:`serve_widget_page`: a small static server on 127.0.0.1 that lays out the URLs the way
  ComfyUI does (``/extensions/<pack>/...`` for ``web/``, ``/api/view`` for payloads) and serves
  the test page of ``tests/web`` with stand-ins for the frontend's ``scripts/app.js`` and
  ``scripts/api.js``. Scripts get the MIME type aiohttp's static route gives them in ComfyUI.
- :func:`bench_widget`: writes an 81 x 352 x 624 sequence (17.8M points), loads it in headless
  Debian chromium (``tests/web/bench_widget.mjs``, playwright-core) and measures the load time
  (from the node's "executed" message to the first picture) and the playback frame rate.
  Without a GPU chromium renders WebGL in software (SwiftShader): the figures are a floor.

Run ``python -m one4d.bench.preview`` (needs ``.ci/install_web.sh`` to have run): it prints a
table and then one JSON line.
"""
from __future__ import annotations

import contextlib
import http.server
import json
import mimetypes
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

from ..export.preview_payload import write_preview_payload
from . import SuiteUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_TEST_DIR = REPO_ROOT / "tests" / "web"
PACK_NAME = "ComfyUI-One4D"
VIEW_TYPES = ("temp", "output", "input")
CHROMIUM = Path(os.environ.get("ONE4D_CHROMIUM", "/usr/bin/chromium"))
INSTALL_HINT = "run `bash .ci/install_web.sh` (Debian chromium, node and the npm packages of tests/web)"


def missing_browser_tools() -> list[str]:
    """What the widget's browser runs need and this machine lacks (empty when everything is there)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"chromium ({CHROMIUM})")
    if shutil.which("node") is None:
        missing.append("node")
    if not (WEB_TEST_DIR / "node_modules" / "playwright-core").is_dir():
        missing.append("playwright-core (tests/web/node_modules)")
    return missing


def make_demo_scene(frames: int = 9, height: int = 96, width: int = 128, seed: int = 0) -> dict:
    """A synthetic 4D scene: {points [F,H,W,3] float32, colors [F,H,W,3] uint8, valid [F,H,W],
    K [F,3,3], c2w [F,4,4]}. A ball rolls left to right in front of a checkered wall while the
    camera slides right; the top-left corner of every frame is marked invalid."""
    rng = np.random.default_rng(seed)
    f = 0.9 * width
    K = np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])
    v, u = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    rays = np.stack([(u - K[0, 2]) / f, (v - K[1, 2]) / f, np.ones_like(u)], axis=-1)  # camera frame
    points = np.empty((frames, height, width, 3), np.float32)
    colors = np.empty((frames, height, width, 3), np.uint8)
    c2w = np.tile(np.eye(4), (frames, 1, 1))
    wall_z, radius = 4.0, 0.55
    for t in range(frames):
        s = t / max(frames - 1, 1)
        cam = np.array([0.6 * s, 0.0, 0.0])
        c2w[t, :3, 3] = cam
        center = np.array([-1.2 + 2.4 * s, 0.25, 2.4])
        # ray-sphere intersection, camera rotation is identity so world ray = camera ray
        oc = cam - center
        b = rays @ oc
        c = oc @ oc - radius ** 2
        a = np.sum(rays * rays, axis=-1)
        disc = b * b - a * c
        hit = disc > 0
        depth_ball = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / a, np.inf)
        depth_wall = (wall_z - cam[2]) / rays[..., 2]
        on_ball = hit & (depth_ball > 0) & (depth_ball < depth_wall)
        depth = np.where(on_ball, depth_ball, depth_wall).astype(np.float32)
        world = cam + rays * depth[..., None]
        points[t] = world
        checker = ((np.floor(world[..., 0] * 2) + np.floor(world[..., 1] * 2)) % 2).astype(bool)
        wall_rgb = np.where(checker[..., None], [225, 205, 160], [40, 140, 150])
        shade = np.clip(0.55 + 0.45 * (center[1] - world[..., 1]) / radius, 0.2, 1.0)[..., None]
        ball_rgb = np.array([230, 40, 40]) * shade
        rgb = np.where(on_ball[..., None], ball_rgb, wall_rgb)
        colors[t] = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    valid = np.ones((frames, height, width), bool)
    valid[:, : height // 8, : width // 8] = False
    return {"points": points, "colors": colors, "valid": valid, "K": np.tile(K, (frames, 1, 1)), "c2w": c2w}


class _Handler(http.server.BaseHTTPRequestHandler):
    """Maps URLs the way ComfyUI does; see :func:`serve_widget_page`."""

    server_version = "one4d-test"
    timeout = 30
    _types = mimetypes.MimeTypes()  # aiohttp's static files use a fresh MimeTypes() as well

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if path in ("/view", "/api/view"):
            return self._send_view(urllib.parse.parse_qs(url.query))
        page = self.server.pages.get(path)  # type: ignore[attr-defined]
        if page is not None:
            return self._send_file(page.parent, page.name)
        routes = self.server.routes  # type: ignore[attr-defined]
        for prefix, folder in routes.items():
            if path.startswith(prefix):
                return self._send_file(folder, path[len(prefix):])
        self.send_error(404)

    def _send_view(self, query):
        filename = query.get("filename", [""])[0]
        subfolder = query.get("subfolder", [""])[0]
        kind = query.get("type", ["output"])[0]
        if kind not in VIEW_TYPES or not filename:
            return self.send_error(400)
        folder = Path(self.server.view_root) / kind  # type: ignore[attr-defined]
        return self._send_file(folder, f"{subfolder}/{os.path.basename(filename)}",
                               content_type="application/octet-stream")

    def _send_file(self, folder: Path, relative: str, content_type: str | None = None):
        base = Path(folder).resolve()
        target = (base / relative.lstrip("/")).resolve()
        if base not in target.parents or not target.is_file():
            return self.send_error(404)
        if content_type is None:
            content_type = self._types.guess_type(target.name)[0] or "application/octet-stream"
        size = target.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(size))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        with open(target, "rb") as f:
            while chunk := f.read(1 << 20):
                self.wfile.write(chunk)


@contextlib.contextmanager
def serve_widget_page(view_root: str | os.PathLike, repo_root: str | os.PathLike = REPO_ROOT):
    """Serve the widget test page on 127.0.0.1 (a free port); yields the base URL.

    URL layout: ``/widget_page.html`` (tests/web), ``/scripts/*`` (the frontend stand-ins in
    tests/web/stubs/scripts), ``/extensions/ComfyUI-One4D/*`` (the pack's web/ folder, as ComfyUI
    serves WEB_DIRECTORY), ``/page-three/*`` (tests/web's npm three.js, for the test pages that
    provide their own copy), ``/api/view?filename=&subfolder=&type=`` (files under
    ``view_root/<type>/<subfolder>/``). The server stops when the block ends.
    """
    repo = Path(repo_root)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.routes = {  # type: ignore[attr-defined]
        f"/extensions/{PACK_NAME}/": repo / "web",
        "/scripts/": repo / "tests" / "web" / "stubs" / "scripts",
        # a page's own three.js (tests/web's npm copy), for the pages that expose one
        "/page-three/": repo / "tests" / "web" / "node_modules" / "three",
    }
    server.pages = {"/widget_page.html": repo / "tests" / "web" / "widget_page.html"}  # type: ignore[attr-defined]
    server.view_root = os.fspath(view_root)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def bench_widget(frames: int = 81, height: int = 352, width: int = 624, seconds: float = 5.0,
                 max_points_per_frame: int | None = None, timeout: float = 300.0) -> dict:
    """Load a frames x height x width sequence in the headless widget; see the module doc.

    max_points_per_frame: None writes every pixel (the full 17.8M points at the default size).
    """
    missing = missing_browser_tools()
    if missing:
        raise SuiteUnavailable(f"needs {', '.join(missing)}", INSTALL_HINT)
    scene = make_demo_scene(frames, height, width)
    budget = max_points_per_frame or height * width
    key = f"{frames}x{height}x{width}"
    with tempfile.TemporaryDirectory(prefix="one4d-bench-") as tmp:
        folder = Path(tmp) / "temp" / "one4d"
        folder.mkdir(parents=True)
        started = time.perf_counter()
        meta = write_preview_payload(folder / "bench.o4dp", scene["points"], scene["colors"], None,
                                     scene["K"], scene["c2w"], max_points_per_frame=budget, fps=8.0)
        write_s = time.perf_counter() - started
        del scene
        with serve_widget_page(tmp) as url:
            entry = json.dumps({"filename": "bench.o4dp", "subfolder": "one4d", "type": "temp"})
            proc = subprocess.run(
                ["node", str(WEB_TEST_DIR / "bench_widget.mjs"), url, entry, str(seconds)],
                cwd=WEB_TEST_DIR, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"bench_widget.mjs failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        browser = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        f"widget_load_{key}_s": round(browser["load_ms"] / 1000, 3),
        f"widget_fps_{key}": round(browser["fps"], 2),
        "points": meta["total_points"],
        "payload_mb": round(meta["bytes"] / 1e6, 1),
        "payload_write_s": round(write_s, 2),
        "widget_download_s": round(browser["fetch_ms"] / 1000, 3),
        "widget_points_per_frame": browser["full"]["points_per_frame"],
        "widget_default_budget_points_per_frame": browser["default_budget"]["points_per_frame"],
        "widget_fps_at_default_budget": round(browser["default_budget"]["fps"], 2),
        "renderer": browser["renderer"],
        "canvas": browser["canvas"],
        "console_errors": browser["errors"],
    }


def main(argv: list[str] | None = None) -> int:
    result = bench_widget()
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
