"""Clips longer than the model window: run the model window by window and stitch the pointmaps.

A clip of ``num_frames`` frames is cut into windows of the model's length (``window``, 4k + 1) that
overlap by ``overlap`` frames (:func:`one4d.geometry.plan_windows`; the last window is shifted back to end
on the last frame). Each window is one ordinary One4D request:

- the user's frames that fall inside it are observed (reconstruction observes every frame; sparse frames
  go to the windows that hold them);
- in generation, the overlap frames that the user did not give are observed too, carried over from the
  RGB the previous window generated (UMC with those frames observed), so consecutive windows agree and
  every window after the first has observed frames;
- window ``k`` samples with seed ``seed + k``.

Each window's pointmap comes out in its own normalized frame; :func:`one4d.geometry.stitch_windows` brings
each into the first window's frame by a robust Sim(3) on the pointmaps of the shared frames (pixel
(u, v) of a shared frame is the same surface point in both windows) and ramp-blends the overlap, the RGB
frames are ramp-blended the same way, and cameras and depth are then recovered over the whole sequence
at once, so the smoothness term of the refinement runs across the seams. One window's model state is in
memory at a time; the decoded frames of all windows are kept (numpy) until the stitch.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from .errors import One4DInputError
from .geometry import plan_windows, stitch_windows
from .geometry.result import One4DResult, assemble_result
from .pipeline import One4DPipeline
from .request import check_video
from .sampling import SamplerSettings, StepCallback
from .umc import validate_indices

# (spec, observed frames [K, H, W, 3] in [0, 1], their indices inside the window) -> RGB [F, H, W, 3] in
# [0, 1] and the window's normalized pointmap [F, H, W, 3]
WindowRunner = Callable[["WindowSpec", Optional[np.ndarray], list[int]], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class WindowSpec:
    """One model window of a long clip: its frames ``[start, stop)`` and which of them are observed."""

    index: int
    start: int
    stop: int
    given: tuple[int, ...]  # clip indices of the user's frames inside the window
    carried: tuple[int, ...]  # clip indices observed from the previous window's generated RGB

    @property
    def length(self) -> int:
        return self.stop - self.start

    @property
    def observed(self) -> list[int]:
        """Observed frames, as indices inside the window."""
        return sorted(i - self.start for i in (*self.given, *self.carried))


def window_settings(settings: SamplerSettings, spec: WindowSpec) -> SamplerSettings:
    """The sampler settings of one window: window ``k`` samples with seed ``settings.seed + k``."""
    return replace(settings, seed=settings.seed + spec.index)


def plan_long_clip(num_frames: int, window: int, overlap: int, given: Sequence[int]) -> list[WindowSpec]:
    """The windows of a clip and what each observes (module docstring). ``given``: the user's frame indices."""
    validate_indices(list(given), num_frames)
    if window < 5 or (window - 1) % 4:
        raise One4DInputError(f"window {window} is not a model length 4k+1 of at least 5 frames; use e.g. 17 or 81.")
    if num_frames > window and not 1 <= overlap < window:
        raise One4DInputError(f"overlap {overlap} must be between 1 and {window - 1} frames for windows of {window}; e.g. {(window - 1) // 4}.")
    spans = plan_windows(num_frames, window, max(1, min(overlap, window - 1)))
    given_set = set(int(i) for i in given)
    specs: list[WindowSpec] = []
    for k, (start, stop) in enumerate(spans):
        inside = tuple(i for i in sorted(given_set) if start <= i < stop)
        carried: tuple[int, ...] = ()
        if k > 0:
            carried = tuple(i for i in range(start, spans[k - 1][1]) if i not in given_set)
        specs.append(WindowSpec(k, start, stop, inside, carried))
    return specs


def _ramp_blend(rgb_windows: list[np.ndarray], specs: list[WindowSpec], num_frames: int) -> np.ndarray:
    """RGB of the whole clip: later windows ramp in over the frames they share with earlier ones."""
    h, w = rgb_windows[0].shape[1:3]
    out = np.zeros((num_frames, h, w, 3), np.float32)
    covered = np.zeros(num_frames, bool)
    for spec, rgb in zip(specs, rgb_windows):
        shared = np.flatnonzero(covered[spec.start:spec.stop]) + spec.start
        for j in range(spec.start, spec.stop):
            if covered[j]:
                alpha = (int(np.searchsorted(shared, j)) + 1) / (shared.size + 1)
                out[j] = (1 - alpha) * out[j] + alpha * rgb[j - spec.start]
            else:
                out[j] = rgb[j - spec.start]
            covered[j] = True
    return out


def run_long_clip(
    run_window: WindowRunner,
    specs: list[WindowSpec],
    num_frames: int,
    frames: Optional[np.ndarray],
    given: Sequence[int],
    recover: bool = True,
) -> One4DResult:
    """Run every window (carrying generated frames forward), stitch the pointmaps and RGB, recover cameras.

    ``frames`` ``[K, H, W, 3]`` in [0, 1] are the user's frames at the clip indices ``given``.
    """
    by_index = {int(i): frames[n] for n, i in enumerate(given)} if frames is not None else {}
    rgb_windows, point_windows = [], []
    for spec in specs:
        observed = []
        for j in spec.observed:
            g = spec.start + j
            observed.append(by_index[g] if g in by_index else rgb_windows[-1][g - specs[spec.index - 1].start])
        stack = np.stack(observed).astype(np.float32) if observed else None
        rgb, points = run_window(spec, stack, spec.observed)
        rgb_windows.append(rgb)
        point_windows.append(points)
    spans = [(s.start, s.stop) for s in specs]
    stitched = stitch_windows(point_windows, spans)
    rgb = _ramp_blend(rgb_windows, specs, num_frames)
    points = np.where(stitched.valid[..., None], stitched.points, 0.0).astype(np.float32)
    return assemble_result(rgb, points, sorted(int(i) for i in given), recover, stitched.valid)


def pipeline_window_runner(
    pipe: One4DPipeline,
    height: int,
    width: int,
    settings: SamplerSettings,
    windows: int,
    prompt: str = "",
    negative_prompt: str = "",
    callback: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WindowRunner:
    """A :data:`WindowRunner` over a loaded pipeline: window ``k`` samples with seed ``settings.seed + k``, and
    ``callback`` sees the steps of the whole run (``windows`` windows of ``settings.steps`` each)."""
    total = settings.steps * windows

    def run(spec: WindowSpec, observed: Optional[np.ndarray], indices: list[int]) -> tuple[np.ndarray, np.ndarray]:
        frames = torch.from_numpy(observed) if observed is not None else None
        cond = pipe.condition(spec.length, height, width, frames, indices, prompt=prompt, negative_prompt=negative_prompt)
        step_cb = None
        if callback is not None:
            step_cb = lambda step, _total, x0: callback(spec.index * settings.steps + step, total, x0)  # noqa: E731
        result = pipe.generate(cond, window_settings(settings, spec), step_cb, should_stop, recover=False)
        return result.rgb, result.raw_points

    return run


def generate_long(
    pipe: One4DPipeline,
    num_frames: int,
    height: int,
    width: int,
    frames: Optional[np.ndarray],
    indices: Sequence[int],
    settings: SamplerSettings,
    window: int | None = None,
    overlap: int | None = None,
    prompt: str = "",
    negative_prompt: str = "",
    callback: StepCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    recover: bool = True,
) -> One4DResult:
    """Generate or reconstruct a clip of any length (module docstring). ``window`` and ``overlap`` default to
    the model kind's (:mod:`one4d.defaults`); a clip no longer than the window is a single ordinary request."""
    window = window or pipe.defaults.frames
    overlap = pipe.defaults.overlap if overlap is None else overlap
    check_video(min(num_frames, window), height, width, geometry=pipe.geometry)
    specs = plan_long_clip(num_frames, window, overlap, indices)
    runner = pipeline_window_runner(pipe, height, width, settings, len(specs), prompt, negative_prompt, callback, should_stop)
    return run_long_clip(runner, specs, num_frames, frames, indices, recover)
