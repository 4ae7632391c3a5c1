"""Cancel and progress reach the nodes after sampling: One4D Cameras, One4D Decode, One4D Save 4D and One4D
Preview 4D fill ComfyUI's progress bar (the fake in comfy_fakes) stage by stage, and the Cancel button (the
bridge's interrupt flag, pressed from a bar update) stops each within one piece of work, writing nothing."""
from __future__ import annotations

import numpy as np
import pytest

import nodes
from comfy_fakes import ProgressBars
from nodes import comfy_bridge
from nodes.cache import EMBEDDED
from nodes.values import PointmapData
from one4d.errors import One4DInterrupted
from one4d.geometry import make_sequence

FRAMES, REFINE = 9, 10


@pytest.fixture()
def dirs(tmp_path):
    comfy_bridge.set_fallback_dirs(output=tmp_path / "output", temp=tmp_path / "temp", input=tmp_path / "input",
                                   models=tmp_path / "models")
    return tmp_path


@pytest.fixture()
def bars(monkeypatch):
    fake = ProgressBars()
    monkeypatch.setattr(comfy_bridge, "progress_bar", fake)
    yield fake
    comfy_bridge.request_interrupt(False)


def _cancel_at(bars: ProgressBars, total: int, value: int) -> None:
    """Press Cancel when a bar of ``total`` steps reaches ``value``."""
    def press(bar, done):
        if bar.total == total and done == value:
            comfy_bridge.request_interrupt()
    bars.on_update = press


def _pointmap() -> PointmapData:
    seq = make_sequence(frames=FRAMES, height=32, width=40, path="orbit", seed=1)
    return PointmapData(seq.points, seq.colors.astype(np.float32) / 255, np.ones(seq.depth.shape, bool))


def _anchored() -> PointmapData:
    return nodes.One4DCameras().recover(_pointmap(), refine_iterations=2)[2]


def test_cameras_fill_a_bar_per_stage(bars):
    nodes.One4DCameras().recover(_pointmap(), refine_iterations=REFINE)
    assert REFINE in bars.filled(), "one refinement step per update"
    assert bars.filled().count(FRAMES) >= 2, "dense depth and flying points, frame by frame"
    assert len(bars.bars) >= 4 and all(b.updates[-1][0] == b.total for b in bars.bars)


def test_cancel_stops_cameras_within_one_refinement_step(bars):
    _cancel_at(bars, REFINE, 3)
    with pytest.raises(One4DInterrupted, match=r"stopped by the user \(cameras: refinement\)"):
        nodes.One4DCameras().recover(_pointmap(), refine_iterations=REFINE)
    refinement = next(b for b in bars.bars if b.total == REFINE)
    assert refinement.updates[-1] == (3, REFINE)
    assert not comfy_bridge.interrupted(), "the interrupt flag is consumed"
    nodes.One4DCameras().recover(_pointmap(), refine_iterations=1)  # the next prompt runs


def test_decode_fills_a_bar_per_latent_frame_and_stops_between_them(bars, dirs):
    model = nodes.One4DApplyPointmapLoRA().apply(nodes.One4DLoadBackbone().load(EMBEDDED, EMBEDDED)[0], EMBEDDED)[0]
    cond = nodes.One4DBuildConditioning().build(model, width=64, height=64, length=17, frame_indices="none", prompt="a box",
                                                negative_prompt="", images=None)[0]
    rgb, xyz = nodes.One4DSample().sample(model, cond, seed=0, steps=1, guidance=1.0, shift=3.0, scheduler="euler")
    latent_frames = rgb["samples"].shape[2]
    bars.bars.clear()  # the sampler's own bar
    nodes.One4DDecode().decode(model, rgb, xyz)
    decoding = bars.bars[0]
    assert decoding.total == latent_frames and [v for v, _ in decoding.updates] == list(range(latent_frames + 1)) * 2
    bars.bars.clear()
    _cancel_at(bars, latent_frames, 2)
    with pytest.raises(One4DInterrupted, match=r"\(decoding\)"):
        nodes.One4DDecode().decode(model, rgb, xyz)
    assert bars.bars[0].updates[-1] == (2, latent_frames) and not comfy_bridge.interrupted()


def test_save_fills_bars_and_a_cancel_while_writing_leaves_no_file(bars, dirs):
    anchored = _anchored()
    bars.bars.clear()
    nodes.One4DSave4D().save(anchored, "one4d/scene", save_depth_png=True, save_colmap=True)
    assert bars.filled().count(FRAMES) >= 2, "depth PNGs and the preview payload, frame by frame"
    saved = sorted(p.name for p in (dirs / "output" / "one4d").iterdir())
    bars.bars.clear()
    _cancel_at(bars, FRAMES, 4)  # while the depth PNGs are written
    with pytest.raises(One4DInterrupted, match="depth PNGs"):
        nodes.One4DSave4D().save(anchored, "one4d/scene", save_depth_png=True, save_colmap=True)
    assert sorted(p.name for p in (dirs / "output" / "one4d").iterdir()) == saved, "nothing of the cancelled save"
    assert not [p for p in (dirs / "output").rglob("*") if p.name.startswith(".")], "no temporary or staging file"


def test_preview_fills_a_bar_and_stops_on_cancel(bars, dirs):
    anchored = _anchored()
    bars.bars.clear()
    nodes.One4DPreview4D().preview(anchored, max_points_per_frame=1000)
    assert FRAMES in bars.filled()
    bars.bars.clear()
    _cancel_at(bars, FRAMES, 1)
    with pytest.raises(One4DInterrupted, match="preview payload"):
        nodes.One4DPreview4D().preview(anchored, max_points_per_frame=1000)
    assert len(list((dirs / "temp" / "one4d").glob("*.o4dp"))) == 1, "only the first preview's payload"
