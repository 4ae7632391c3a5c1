"""The library's cancellation and progress hook (one4d.progress) and the work that polls it: camera recovery of
a 1,025-frame clip stops within a second of a cancel set from another thread, the VAE decoder stops between
latent frames, and an export cancelled at any of its checks leaves no file, folder or temporary behind."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from one4d.backbone import build_vae
from one4d.codec import VideoCodec
from one4d.errors import One4DInterrupted
from one4d.export import (
    export_cameras_json,
    export_colmap,
    export_depth_pngs,
    export_glb,
    export_npz,
    export_ply,
    export_ply_frames,
    load_npz,
)
from one4d.export.preview_payload import write_preview_payload
from one4d.export.result_folder import write_result_folder
from one4d.export.video import write_video
from one4d.geometry import One4DResult, make_sequence, recover_cameras
from one4d.progress import cancelled, check_cancelled, progress_hook, report, track

LONG = 1025  # the longest clip a request may ask for (one4d.defaults.MAX_FRAMES)


def test_without_a_hook_nothing_cancels_and_nobody_listens():
    assert not cancelled()
    check_cancelled("anything")
    report("anything", 1, 2)
    assert list(track("anything", [1, 2])) == [1, 2]


def test_a_hook_holds_for_its_block_and_nested_hooks_restore_the_outer_one():
    seen = []
    with progress_hook(report=lambda *a: seen.append(a)):
        with progress_hook(cancelled=lambda: True):
            with pytest.raises(One4DInterrupted, match=r"stopped by the user \(inner stage\)"):
                check_cancelled("inner stage")
            report("not heard", 1, 1)  # the inner hook has no report
        report("outer", 1, 2)
    assert seen == [("outer", 1, 2)] and not cancelled()


def test_a_hook_belongs_to_the_thread_that_installed_it():
    stop = threading.Event()
    stop.set()
    elsewhere = []
    with progress_hook(stop.is_set):
        worker = threading.Thread(target=lambda: elsewhere.append(cancelled()))
        worker.start()
        worker.join()
        assert cancelled()
    assert elsewhere == [False]


def test_track_checks_before_each_item_and_reports_after_it():
    stop, seen, done = threading.Event(), [], []
    with progress_hook(stop.is_set, lambda *a: seen.append(a)):
        with pytest.raises(One4DInterrupted, match="frames"):
            for i in track("frames", range(5)):
                done.append(i)
                if i == 1:
                    stop.set()
    assert done == [0, 1] and seen == [("frames", 1, 5), ("frames", 2, 5)]


# ---------------------------------------------------------------------------------------------------------
# camera recovery of 1,025 frames
# ---------------------------------------------------------------------------------------------------------

class TimerCancel:
    """Cancel from a timer thread ``delay`` s after ``stage`` first reports progress; records when it fired."""

    def __init__(self, stage: str, delay: float = 0.05):
        self.stage, self.delay = stage, delay
        self.flag, self.fired_at, self.stages = threading.Event(), None, []

    def _fire(self) -> None:
        self.fired_at = time.perf_counter()
        self.flag.set()

    def report(self, stage: str, done: int, total: int) -> None:
        if stage not in self.stages:
            self.stages.append(stage)
            if stage == self.stage:
                threading.Timer(self.delay, self._fire).start()


@pytest.mark.parametrize("stage, size", [("cameras: closed form", 64), ("cameras: refinement", 32)])
def test_camera_recovery_of_1025_frames_stops_within_a_second_of_cancel(stage, size):
    """Before the hook, the closed form ran as whole-clip batches and each refinement step over all frames at
    once; a cancel waited for the whole recovery (133 s at 1,025 frames in a real ComfyUI)."""
    points = make_sequence(frames=LONG, height=size, width=size, path="handheld", noise=0.01).points
    cancel = TimerCancel(stage)
    with progress_hook(cancel.flag.is_set, cancel.report):
        with pytest.raises(One4DInterrupted, match=f"stopped by the user \\({stage}\\)"):
            recover_cameras(points, iters=100)
    latency = time.perf_counter() - cancel.fired_at
    assert latency < 1.0, f"stopped {latency:.2f} s after the cancel"
    assert cancel.stages[-1] == stage


def test_an_export_of_1025_frames_cancelled_from_a_thread_leaves_nothing(tmp_path):
    seq = make_sequence(frames=LONG, height=32, width=32, path="dolly")
    out = tmp_path / "out"
    out.mkdir()
    for stage, write in (("writing depth PNGs", lambda: export_depth_pngs(out / "depth", seq.depth)),
                         ("writing clip.npz", lambda: export_npz(out / "clip.npz", seq.points, seq.colors, seq.depth))):
        cancel = TimerCancel(stage, delay=0.0)
        with progress_hook(cancel.flag.is_set, cancel.report):
            with pytest.raises(One4DInterrupted):
                write()
        assert time.perf_counter() - cancel.fired_at < 1.0
        assert list(out.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------------------

def test_decoding_stops_between_latent_frames_and_reports_each():
    torch.manual_seed(0)
    codec = VideoCodec(build_vae("tiny-vae").eval())
    latents = torch.randn(1, 16, 5, 2, 2)
    calls = []
    codec.vae.decoder.register_forward_hook(lambda *_: calls.append(1))
    seen = []
    with progress_hook(lambda: len(seen) >= 2, lambda *a: seen.append(a)):
        with pytest.raises(One4DInterrupted, match=r"\(decoding\)"):
            codec.decode_video(latents)
    assert len(calls) == 2 and seen == [("decoding", 0, 5), ("decoding", 1, 5)]
    assert not codec.vae.decoder._forward_pre_hooks, "the hook is removed after a cancel"
    seen.clear()
    with progress_hook(report=lambda *a: seen.append(a)):
        frames = codec.decode_video(latents)
    assert frames.shape[0] == 17 and [d for _, d, _ in seen] == [0, 1, 2, 3, 4, 5]


# ---------------------------------------------------------------------------------------------------------
# exports
# ---------------------------------------------------------------------------------------------------------

class CountingCancel:
    """Counts cancellation checks; asks to stop at check number ``at`` (never when None)."""

    def __init__(self, at: int | None = None):
        self.at, self.checks = at, 0

    def __call__(self) -> bool:
        self.checks += 1
        return self.at is not None and self.checks >= self.at


@pytest.fixture(scope="module")
def scene():
    return make_sequence(frames=4, height=24, width=32, path="orbit", seed=3)


def _result(s) -> One4DResult:
    return One4DResult(s.colors.astype(np.float32) / 255, s.points, s.depth, s.depth > 0, s.K, s.c2w, [0])


EXPORTS = {
    "ply": lambda s, d: export_ply(d / "a.ply", s.points, s.colors),
    "glb": lambda s, d: export_glb(d / "a.glb", s.points, s.colors),
    "npz": lambda s, d: export_npz(d / "a.npz", s.points, s.colors, s.depth, None, s.K, s.c2w),
    "cameras_json": lambda s, d: export_cameras_json(d / "a.json", s.K, s.c2w, 32, 24),
    "colmap": lambda s, d: export_colmap(d / "colmap", s.K, s.c2w, 32, 24, s.points, s.colors),
    "depth_pngs": lambda s, d: export_depth_pngs(d / "depth", s.depth),
    "ply_frames": lambda s, d: export_ply_frames(d / "frames", s.points, s.colors),
    "video": lambda s, d: write_video(d / "a.mp4", s.colors.astype(np.float32) / 255),
    "preview": lambda s, d: write_preview_payload(d / "a.o4dp", s.points, s.colors),
    "result_folder": lambda s, d: write_result_folder(d / "run", _result(s), s.colors.astype(np.float32) / 255, 8.0, 1000),
}


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_an_export_cancelled_at_any_of_its_checks_leaves_nothing(scene, tmp_path, name):
    dry, dry_dir = CountingCancel(), tmp_path / "dry"
    dry_dir.mkdir()
    with progress_hook(dry):
        EXPORTS[name](scene, dry_dir)
    assert dry.checks >= 1 and any(dry_dir.iterdir())
    for at in range(1, dry.checks + 1):
        target = tmp_path / f"cancel_{at}"
        target.mkdir()
        with progress_hook(CountingCancel(at)):
            with pytest.raises(One4DInterrupted):
                EXPORTS[name](scene, target)
        left = sorted(p.name for p in target.rglob("*"))
        assert left == [], f"cancelled at check {at} of {dry.checks}: {left} left behind"


def test_the_npz_written_frame_by_frame_is_what_numpy_reads(scene, tmp_path):
    path = export_npz(tmp_path / "a.npz", scene.points, scene.colors, scene.depth, None, scene.K, scene.c2w,
                      normalization={"scale": 2.0}, compress=True)
    data = load_npz(path)
    assert np.array_equal(data["points"], scene.points) and np.array_equal(data["colors"], scene.colors)
    assert np.array_equal(data["K"], scene.K.astype(np.float32)) and data["normalization"] == {"scale": 2.0}
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(["points", "colors", "depth", "K", "c2w", "convention", "normalization_json"])


def test_a_folder_export_into_an_existing_folder_keeps_its_other_files(scene, tmp_path):
    folder = tmp_path / "depth"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    paths, _ = export_depth_pngs(folder, scene.depth)
    assert (folder / "notes.txt").read_text() == "mine" and all(Path(p).is_file() for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["depth"], "no staging folder is left"
