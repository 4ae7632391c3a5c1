"""One4D Long Clip: window-by-window reconstruction and generation in the nodes, progress over the whole
run, Cancel between and inside windows, and unused input frames named in the UI text."""
from __future__ import annotations

import pytest
import torch

import nodes
from nodes import comfy_bridge
from nodes.cache import EMBEDDED
from one4d.data import render_scene
from one4d.errors import One4DInputError
from one4d.sampling import One4DInterrupted

ARGS = dict(width=64, height=64, window=17, overlap=8, seed=0, steps=1, guidance=1.0, shift=3.0, scheduler="unipc")


@pytest.fixture()
def model(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    handle = nodes.One4DLoadBackbone().load(EMBEDDED, EMBEDDED)[0]
    return nodes.One4DApplyPointmapLoRA().apply(handle, EMBEDDED)[0]


def test_long_video_is_reconstructed_window_by_window_with_progress_over_the_run(model, monkeypatch):
    calls = []
    monkeypatch.setattr(comfy_bridge, "make_progress", lambda total: lambda step, n, x0=None: calls.append((step, n)))
    video = torch.from_numpy(render_scene(1_000_003, frames=29).rgb)
    out = nodes.One4DLongClip().run(model, length=0, frame_indices="all", images=video, prompt="a room", **ARGS)
    images, pointmap, depth = out["result"]
    assert images.shape == (29, 64, 64, 3) and depth.shape == (29, 64, 64, 3) and pointmap.points.shape == (29, 64, 64, 3)
    assert pointmap.indices == list(range(29)) and pointmap.valid.mean() > 0.9
    assert out["ui"]["text"] == ["29 frames in 3 windows of 17 (overlap 8)"]
    assert calls == [(1, 3), (2, 3), (3, 3)]  # one step per window, counted over the whole run
    cams, _, anchored = nodes.One4DCameras().recover(pointmap, refine_iterations=5)
    assert cams.c2w.shape == (29, 4, 4) and anchored.space == "anchored"


def test_unused_input_frames_are_named(model):
    video = torch.from_numpy(render_scene(1_000_003, frames=17).rgb[:15])
    out = nodes.One4DLongClip().run(model, length=0, frame_indices="all", images=video, **ARGS)
    assert out["result"][0].shape[0] == 13
    assert out["ui"]["text"][1] == "2 of the 15 input frames are not used (a clip within one window has 4k+1 frames): frames 13-14."
    out = nodes.One4DLongClip().run(model, length=9, frame_indices="all", images=video, **ARGS)
    assert out["ui"]["text"][1] == "6 of the 15 input frames are not used (length 9): frames 9-14."


def test_generation_from_one_image_to_a_long_clip(model):
    image = torch.from_numpy(render_scene(1_000_004).rgb[:1])
    out = nodes.One4DLongClip().run(model, length=25, frame_indices="first", images=image, **ARGS)
    assert out["result"][0].shape == (25, 64, 64, 3) and out["result"][1].indices == [0]
    with pytest.raises(One4DInputError, match="set length"):
        nodes.One4DLongClip().run(model, length=0, frame_indices="first", images=image, **ARGS)


def test_cancel_stops_between_and_inside_windows(model, monkeypatch):
    video = torch.from_numpy(render_scene(1_000_003, frames=29).rgb)
    comfy_bridge.request_interrupt()  # pressed before the first window
    with pytest.raises(One4DInterrupted, match="before window 1 of 3"):
        nodes.One4DLongClip().run(model, length=0, frame_indices="all", images=video, **ARGS)
    assert not comfy_bridge.interrupted()
    seen = []

    def progress(total):
        def update(step, n, x0=None):
            seen.append(step)
            if step == 3:  # Cancel during window 1's sampling (steps 1-2 are window 0)
                comfy_bridge.request_interrupt()
        return update

    monkeypatch.setattr(comfy_bridge, "make_progress", progress)
    with pytest.raises(One4DInterrupted, match="after 1 of 2 steps"):
        nodes.One4DLongClip().run(model, length=0, frame_indices="all", images=video, **{**ARGS, "steps": 2})
    assert seen == [1, 2, 3] and not comfy_bridge.interrupted()
