"""Browser test of the 4D preview widget: Debian chromium, driven by playwright-core.

One headless session (tests/web/widget_check.mjs) mounts the widget on the test page with the
frontend stand-ins, feeds it a payload written by ``write_preview_payload`` and plays with every
control; the tests below assert on its screenshots (pixels) and on what it recorded. The
screenshots stay in pytest's temporary directory (the path is printed); set ONE4D_WIDGET_SHOTS to a
folder to also get the ones a person would look at there (docs/images/widget_*.png come from it).

When chromium, node or the npm packages are missing these tests skip with the install hint
(``bash .ci/install_web.sh``), except where the environment variable CI is set: CI installs them,
so a missing tool there is a failure.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from one4d.bench.preview import make_demo_scene, serve_widget_page
from one4d.export.preview_payload import write_preview_payload

REPO = Path(__file__).resolve().parent.parent
WEB_TESTS = REPO / "tests" / "web"
CHROMIUM = Path("/usr/bin/chromium")
BACKGROUND = np.array([0x1B, 0x1B, 0x1F])  # the viewer's dark clear colour (RGB), "auto" for the bright demo scene
LIGHT_BACKGROUND = np.array([0xF2, 0xF2, 0xF4])  # its light one, "auto" for dark colours
FIXTURE_BUDGET = 11_000  # below the demo scene's 12,096 valid points a frame: the writer subsamples
SPARSE_BUDGET = 3_000  # the sparse fixture: about as many points a frame as the embedded model's 64 x 64 frames
DIM = 0.3  # the dim fixture: the demo scene's colours times this (dark, muted colours, like the embedded model's)
# screenshots copied to ONE4D_WIDGET_SHOTS as widget_<name>.png ("widget" is the whole test page)
SHOTS_FOR_PEOPLE = ["widget", "rgb_frame0", "rgb_sparse", "rgb_dim", "rgb_dim_dark_background", "save_node_zoom125",
                    "save_node_narrow"]


def _require_browser_tools():
    problems = []
    if not CHROMIUM.exists():
        problems.append(f"{CHROMIUM} is missing")
    if not (WEB_TESTS / "node_modules" / "playwright-core").is_dir():
        problems.append("tests/web/node_modules is missing")
    if shutil.which("node") is None:
        problems.append("node is not on PATH")
    if problems:
        message = "; ".join(problems) + ": run .ci/install_web.sh first."
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs the browser tools: missing there is a broken setup
        pytest.skip(f"{message} Install hint: bash .ci/install_web.sh")


def _load_png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"could not read {path}"
    return image[..., ::-1].astype(np.int16)  # RGB


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_browser_tools_skip_with_the_hint_but_fail_on_ci(monkeypatch, tmp_path, ci):
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    # catch both outcomes, so that a wrong one fails here instead of skipping this test
    with pytest.raises((pytest.skip.Exception, pytest.fail.Exception)) as info:
        _require_browser_tools()
    assert info.type is (pytest.skip.Exception if ci is None else pytest.fail.Exception)
    assert f"{tmp_path / 'no-chromium'} is missing" in str(info.value)
    assert ".ci/install_web.sh" in str(info.value)
    if ci is None:
        assert "bash .ci/install_web.sh" in str(info.value)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    _require_browser_tools()
    root = tmp_path_factory.mktemp("widget")
    view = root / "view" / "temp" / "one4d"
    view.mkdir(parents=True)
    scene = make_demo_scene()
    meta = write_preview_payload(view / "fixture.o4dp", scene["points"], scene["colors"], scene["valid"],
                                 scene["K"], scene["c2w"], max_points_per_frame=FIXTURE_BUDGET, fps=6)
    dim_colors = (scene["colors"] * DIM).astype(np.uint8)
    write_preview_payload(view / "dim.o4dp", scene["points"], dim_colors, scene["valid"], scene["K"], scene["c2w"],
                          max_points_per_frame=FIXTURE_BUDGET, fps=6)
    write_preview_payload(view / "sparse.o4dp", scene["points"], scene["colors"], scene["valid"], scene["K"], scene["c2w"],
                          max_points_per_frame=SPARSE_BUDGET, fps=6)
    (view / "corrupt.o4dp").write_bytes(b"PK\x03\x04" + b"\0" * 64)
    shots = root / "screenshots"
    shots.mkdir()
    with serve_widget_page(root / "view") as url:
        proc = subprocess.run(["node", str(WEB_TESTS / "widget_check.mjs"), url, str(shots)],
                              cwd=WEB_TESTS, capture_output=True, text=True, timeout=240, check=False)
    results_file = shots / "results.json"
    assert results_file.exists(), f"the browser driver wrote no results:\n{proc.stdout}\n{proc.stderr}"
    results = json.loads(results_file.read_text())
    print(f"\nwidget screenshots: {shots}")
    assert results["ok"], f"browser session failed: {results.get('error')}\n{proc.stderr}"
    people = os.environ.get("ONE4D_WIDGET_SHOTS")
    if people:
        Path(people).mkdir(parents=True, exist_ok=True)
        for name in SHOTS_FOR_PEOPLE:
            target = "widget_page" if name == "widget" else f"widget_{name}"
            shutil.copyfile(shots / f"{name}.png", Path(people) / f"{target}.png")
    return {"results": results, "steps": results["steps"], "shots": shots, "meta": meta}


def _phase_messages(results, name):
    marks = {p["name"]: p["at"] for p in results["phases"]}
    order = [p["name"] for p in results["phases"]]
    start = marks[name]
    following = [marks[n] for n in order[order.index(name) + 1:]]
    end = following[0] if following else len(results["messages"])
    return results["messages"][start:end]


def _problems(messages):
    return [m for m in messages if m["type"] in ("error", "pageerror", "requestfailed")]


def test_no_console_errors(session):
    results = session["results"]
    for phase in ("happy", "teardown", "readability", "layout", "three-importmap", "three-global"):
        assert _problems(_phase_messages(results, phase)) == [], phase
    # the error phase asks for a missing file on purpose: its 404 is the only error allowed
    errors = _problems(_phase_messages(results, "errors"))
    assert all("404" in m["text"] for m in errors), errors


def test_points_are_visible(session):
    image = _load_png(session["shots"] / "rgb_frame0.png")
    drawn = np.abs(image - BACKGROUND).sum(-1) > 30
    assert drawn.mean() > 0.15, f"only {drawn.mean():.1%} of the view shows points"
    red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
    teal = (image[..., 0] < 90) & (image[..., 1] > 100) & (image[..., 2] > 100)
    beige = (image[..., 0] > 180) & (image[..., 1] > 160) & (image[..., 2] > 110) & (image[..., 2] < 200)
    assert red.sum() > 200 and teal.sum() > 1000 and beige.sum() > 1000  # ball and checkered wall
    assert session["steps"]["loaded"]["points"] == str(min(FIXTURE_BUDGET, session["meta"]["points_per_frame"][0]))


def test_changing_frame_changes_the_picture(session):
    first = _load_png(session["shots"] / "rgb_frame0.png")
    last = _load_png(session["shots"] / "rgb_frame_last.png")
    assert session["steps"]["lastFrame"]["frame"] == "8"
    assert np.abs(first - last).mean() > 5

    def ball_x(image):
        red = (image[..., 0] > 150) & (image[..., 1] < 90) & (image[..., 2] < 90)
        return np.nonzero(red)[1].mean()

    assert ball_x(last) > ball_x(first) + 40  # the ball rolls to the right


def test_colour_modes_change_colours(session):
    rgb = _load_png(session["shots"] / "rgb_frame_last.png")
    depth = _load_png(session["shots"] / "depth_frame_last.png")
    height = _load_png(session["shots"] / "height_frame_last.png")
    back = _load_png(session["shots"] / "rgb_frame_last.png")
    assert np.abs(rgb - depth).mean() > 10 and np.abs(rgb - height).mean() > 10 and np.abs(depth - height).mean() > 5
    # depth: the near ball is at the blue end of the ramp, the far wall at the red end
    blue = (depth[..., 2] > depth[..., 0] + 60)
    far = (depth[..., 0] > depth[..., 2] + 60)
    assert blue.sum() > 300 and far.sum() > 3000
    assert session["steps"]["color_depth"]["colorMode"] == "depth"
    assert np.abs(back - rgb).mean() < 1  # back to RGB: the same picture again


def test_controls_point_size_cameras_orbit_and_budget(session):
    shots, steps = session["shots"], session["steps"]
    base = _load_png(shots / "rgb_frame_last.png")
    assert np.abs(_load_png(shots / "size5.png") - base).mean() > 2
    assert np.abs(_load_png(shots / "no_cameras.png") - base).mean() > 0.05  # frustums and path hidden
    assert np.abs(_load_png(shots / "orbited.png") - base).mean() > 5
    assert np.abs(_load_png(shots / "fit.png") - base).mean() < 1  # "Fit" brings the first view back
    assert int(steps["budget"]["points"]) < int(steps["color_rgb"]["points"])
    assert steps["budgetOptions"][0] == "0" and len(steps["budgetOptions"]) > 1
    assert len(steps["playFramesSeen"]) >= 3  # playback went through the frames


def test_widget_serializes_nothing_and_survives_reload(session):
    steps = session["steps"]
    assert steps["otherNode"]["hasPreview"] is False
    widgets = steps["created"]["widgets"]
    assert widgets[-1] == {"name": "one4d_preview", "type": "one4d_preview", "serialize": False, "optionsSerialize": False}
    assert steps["serialized"]["widgets_values"] == ["one4d/preview", 8]
    assert steps["promptInputs"] == {"filename_prefix": "one4d/preview", "fps": 8}
    reload = steps["reload"]
    assert reload["after"]["widgets_values"] == reload["saved"]["widgets_values"] == ["one4d/preview", 8]
    assert steps["reloaded"]["state"] == "ready"


def test_widget_follows_node_resize(session):
    before, after = session["steps"]["canvasBeforeResize"], session["steps"]["canvasAfterResize"]
    assert after[0] > before[0] and after[1] > before[1]
    assert after[:2] == after[2:]  # drawing buffer matches the displayed size (device pixel ratio 1)


def test_errors_are_shown_in_the_widget(session):
    steps = session["steps"]
    assert "HTTP 404" in steps["missingText"] and "Run the workflow again" in steps["missingText"]
    assert "not a One4D preview payload" in steps["corruptText"]
    assert steps["removed"] == 0  # removing the node released the viewer's canvas
    assert "Run the workflow" in steps["idleText"]


def _drawn_box(image: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Pixels that differ from the viewer background, and (aspect, centre x, centre y) of their bounding
    box relative to the image."""
    drawn = np.abs(image - BACKGROUND).sum(-1) > 30
    ys, xs = np.nonzero(drawn)
    assert xs.size, "nothing is drawn"
    h, w = drawn.shape
    aspect = (xs.max() - xs.min()) / max(ys.max() - ys.min(), 1)
    return drawn, (aspect, (xs.min() + xs.max()) / 2 / w, (ys.min() + ys.max()) / 2 / h)


def test_page_screenshot_shows_the_point_cloud_after_resize(session):
    """The full-page screenshot taken after the node was resized and the fixture reloaded: the viewer's
    canvas shows the demo scene (ball and checkered wall) at frame 0 in RGB, and the picture follows the
    new canvas size without being stretched or shifted (same shape and centre as before the resize)."""
    steps = session["steps"]
    assert (steps["atScreenshot"]["frame"], steps["atScreenshot"]["colorMode"]) == ("0", "rgb")
    page = _load_png(session["shots"] / "widget.png")
    assert page.shape[:2] == (640, 700)  # the browser viewport of widget_check.mjs
    box = steps["canvasBoxAtScreenshot"]
    x, y, w, h = (round(box[k]) for k in ("x", "y", "width", "height"))
    assert [w, h] == steps["canvasAfterResize"][2:]
    inset = 3  # the stage's rounded corners
    canvas = page[y + inset:y + h - inset, x + inset:x + w - inset]
    drawn, (aspect, cx, cy) = _drawn_box(canvas)
    assert drawn.mean() > 0.08, f"only {drawn.mean():.1%} of the canvas shows points"
    assert len(np.unique(canvas[drawn], axis=0)) > 500  # coloured points, not a flat fill
    red = (canvas[..., 0] > 150) & (canvas[..., 1] < 90) & (canvas[..., 2] < 90)
    teal = (canvas[..., 0] < 90) & (canvas[..., 1] > 100) & (canvas[..., 2] > 100)
    beige = (canvas[..., 0] > 180) & (canvas[..., 1] > 160) & (canvas[..., 2] > 110) & (canvas[..., 2] < 200)
    assert red.sum() > 200 and teal.sum() > 1000 and beige.sum() > 1000  # ball and checkered wall
    page_red = (page[..., 0] > 150) & (page[..., 1] < 90) & (page[..., 2] < 90)
    assert page_red.sum() == red.sum()  # the ball is inside the canvas box: the crop is the canvas
    # the same view as the first screenshot (frame 0, RGB, smaller canvas): same shape and place
    before = _load_png(session["shots"] / "rgb_frame0.png")[inset:-inset, inset:-inset]
    _, (aspect0, cx0, cy0) = _drawn_box(before)
    assert abs(aspect / aspect0 - 1) < 0.03, (aspect, aspect0)
    assert abs(cx - cx0) < 0.02 and abs(cy - cy0) < 0.02, ((cx, cy), (cx0, cy0))


def test_vendored_three_matches_the_pinned_npm_package():
    _require_browser_tools()
    npm = WEB_TESTS / "node_modules" / "three"
    vendor = REPO / "web" / "vendor" / "three"
    pinned = json.loads((WEB_TESTS / "package.json").read_text())["devDependencies"]["three"]
    assert json.loads((npm / "package.json").read_text())["version"] == pinned
    rewrites = {
        "three.core.mjs": ("build/three.core.js", []),
        "three.module.mjs": ("build/three.module.js", [("from './three.core.js'", "from './three.core.mjs'")]),
        # OrbitControls takes its classes from the widget's three.js resolver (the page's copy or the vendored one)
        "OrbitControls.mjs": ("examples/jsm/controls/OrbitControls.js", [("from 'three'", "from '../../js/one4d_three.mjs'")]),
        "LICENSE": ("LICENSE", []),
    }
    for name, (source, replacements) in rewrites.items():
        text = (npm / source).read_text()
        for old, new in replacements:
            assert old in text
            text = text.replace(old, new)
        assert (vendor / name).read_text() == text, f"web/vendor/three/{name} differs from three {pinned}"


# --------------------------------------------------------------------------- readable defaults, layout, three.js


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colours (0..255)."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def _contrast(a, b):
    return (np.maximum(a, b) + 0.05) / (np.minimum(a, b) + 0.05)


def _background_of(image: np.ndarray) -> np.ndarray:
    """The most common colour along the border of a stage screenshot (inside its rounded corners)."""
    border = np.concatenate([image[3, 3:-3], image[-4, 3:-3], image[3:-3, 3], image[3:-3, -4]])
    colours, counts = np.unique(border.reshape(-1, 3), axis=0, return_counts=True)
    return colours[counts.argmax()]


def _cloud(image: np.ndarray):
    """(pixels that differ from the background, the silhouette they close up to with a 15 px closing)."""
    drawn = np.abs(image - _background_of(image)).sum(-1) > 30
    closed = cv2.morphologyEx(drawn.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((15, 15), np.uint8)).astype(bool)
    return drawn, closed


def _fill(name: str, shots: Path) -> float:
    """Share of the cloud's silhouette that is covered by points."""
    drawn, silhouette = _cloud(_load_png(shots / f"{name}.png")[3:-3, 3:-3])
    return (drawn & silhouette).sum() / silhouette.sum()


def test_point_size_follows_the_density(session):
    """The default point size closes the surfaces, with 11,000 points a frame and with 3,000 (a fixed 2-pixel
    size left more than half of the sparse cloud as background showing through)."""
    for name, least in (("rgb_sparse", 0.7), ("rgb_frame0", 0.87)):
        fill = _fill(name, session["shots"])
        assert fill > least, f"{name}: only {fill:.0%} of the cloud's silhouette is covered by points"
    steps = session["steps"]
    for step in ("loaded", "sparse"):
        assert steps[step]["pointSizeAuto"] == "true" and 2 < float(steps[step]["pointSize"]) <= 8, steps[step]
    assert float(steps["sparse"]["pointSize"]) > float(steps["loaded"]["pointSize"])  # fewer points, larger ones
    # the size slider sets the size by hand, which ends the automatic size
    assert (session["steps"]["size5"]["pointSize"], session["steps"]["size5"]["pointSizeAuto"]) == ("5", "false")
    assert np.abs(_load_png(session["shots"] / "size5.png") - _load_png(session["shots"] / "rgb_frame_last.png")).mean() > 0.5


def test_dark_colours_get_a_light_background(session):
    """Dark, muted colours (the demo scene at 30% brightness) stand out: "auto" picks the light background,
    against which the points' median contrast is at least WCAG's 3:1 for graphics; the dark background,
    still one click away, gives them far less."""
    def median_contrast(name):
        image = _load_png(session["shots"] / f"{name}.png")[3:-3, 3:-3]
        background = _background_of(image)
        drawn, _ = _cloud(image)
        return float(np.median(_contrast(_luminance(image[drawn]), _luminance(background)))), background

    light, light_bg = median_contrast("rgb_dim")
    assert light >= 3.0, f"median contrast of the points {light:.2f} against the background ({light_bg})"
    dark, dark_bg = median_contrast("rgb_dim_dark_background")
    assert np.abs(light_bg - LIGHT_BACKGROUND).max() <= 1 and np.abs(dark_bg - BACKGROUND).max() <= 1
    assert dark < 2.0 < light / dark, (light, dark)
    steps = session["steps"]
    assert (steps["dim"]["background"], steps["dim"]["backgroundChoice"]) == ("light", "auto")
    assert (steps["dimDark"]["background"], steps["dimDark"]["backgroundChoice"]) == ("dark", "dark")
    assert steps["dimAuto"]["backgroundChoice"] == "auto"
    assert steps["loaded"]["background"] == "dark"  # the bright demo scene keeps the dark one


def test_cameras_and_path_do_not_hide_the_cloud(session):
    """Frustums and path are drawn (hundreds of pixels change when they are hidden) but, in the first view,
    below the cloud: hiding them changes almost nothing inside the cloud's silhouette."""
    shown = _load_png(session["shots"] / "rgb_frame_last.png")[3:-3, 3:-3]
    hidden = _load_png(session["shots"] / "no_cameras.png")[3:-3, 3:-3]
    _, silhouette = _cloud(hidden)
    changed = np.abs(shown - hidden).sum(-1) > 30
    assert changed.sum() > 300, "the frustums and path are not visible"
    inside = (changed & silhouette).sum() / silhouette.sum()
    assert inside < 0.002, f"the overlays cover {inside:.1%} of the cloud"
    elevation = float(session["steps"]["loaded"]["elevation"])
    assert 0 < elevation <= 60


def _inside(inner: dict, outer: dict, tolerance: float = 0.5) -> bool:
    return (inner["x"] >= outer["x"] - tolerance and inner["y"] >= outer["y"] - tolerance
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + tolerance
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + tolerance)


@pytest.mark.parametrize("case", ["1", "1.25", "narrow"])
def test_controls_fit_inside_the_node(session, case):
    """A new Save 4D node, laid out the way the frontend lays out DOM widgets (the element is the node's room
    below its nine widgets, inset by 10 px): every control lies inside that element at 100% and 125% canvas
    zoom and on a 300 px wide node, where the rows wrap; the stage takes what the controls leave."""
    layout = session["steps"]["layout"][case]
    element, node = layout["element"], layout["node"]
    assert _inside(element, node)
    outside = [c["name"] for c in layout["controls"] if not _inside(c, element)]
    assert not outside, f"controls cut off at {case}: {outside}"
    assert len(layout["controls"]) >= 14
    assert layout["stage"]["height"] >= 0.45 * element["height"], layout["stage"]
    if case == "narrow":
        assert layout["size"][0] == 300 and len({round(c["y"]) for c in layout["controls"]}) >= 3  # wrapped


def test_the_page_s_three_js_is_used_without_a_second_copy(session):
    """A page that exposes three.js (an import map for "three", or window.THREE) lends the widget its copy:
    no second copy is loaded, so three.js never warns "Multiple instances of Three.js being imported".
    Without one (the ComfyUI frontend exposes none) the vendored copy is loaded."""
    results, steps = session["results"], session["steps"]
    duplicates = [m for m in results["messages"] if "Multiple instances of Three.js" in m["text"]]
    assert duplicates == []
    assert steps["loaded"]["three"] == "vendored"
    assert steps["pageThree"]["importmap"]["three"] == "page:importmap"
    assert steps["pageThree"]["global"]["three"] == "page:window.THREE"
    pinned = json.loads((WEB_TESTS / "package.json").read_text())["devDependencies"]["three"]
    for mode in ("importmap", "global"):
        assert steps["pageThree"][mode]["pageRevision"] == pinned.split(".")[1]  # the page's copy set the marker
        assert steps["pageThree"][mode]["state"] == "ready"
        image = _load_png(session["shots"] / f"three_{mode}.png")
        assert (np.abs(image - BACKGROUND).sum(-1) > 30).mean() > 0.15  # drawn with the page's copy
