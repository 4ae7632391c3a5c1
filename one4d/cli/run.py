"""``one4d run``: the main job. Frames + text -> RGB video, pointmaps, point cloud, cameras and a preview.

Inputs: ``--image`` (image-to-4D), ``--video`` (reconstruction from all frames), ``--frames`` with
``--indices`` (sparse), or only ``--text`` (text-to-4D). Outputs in ``--out``: the files of
:mod:`one4d.export.result_folder`, written together or not at all, so a failed or interrupted run never
leaves a partial set.

Clips longer than the model window (a long ``--video``, or ``--length`` above the window) run window by
window and are stitched (:mod:`one4d.long_video`). Video frames left out by ``--stride``, ``--max-frames``
or because a clip shorter than the window must have 4k+1 frames are named in a warning, never dropped
silently.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..data.media import read_image, read_video_clip
from ..defaults import ModelDefaults
from ..errors import One4DInputError
from ..export.result_folder import write_result_folder
from ..models import ModelFolder
from ..pipeline import One4DPipeline
from ..long_video import generate_long, plan_long_clip
from ..request import check_video
from ..umc import parse_indices
from .options import add_sampling_options, request_defaults, sampling_settings


def _progress(total_label: str):
    state = {"t0": time.time()}

    def callback(step: int, total: int, _x0: torch.Tensor) -> None:
        done = int(30 * step / total)
        rate = step / max(time.time() - state["t0"], 1e-9)
        sys.stderr.write(f"\r{total_label} [{'#' * done}{'.' * (30 - done)}] {step}/{total} {rate:.1f} it/s")
        if step == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return callback


@dataclass
class Inputs:
    """What the command line asks for: the observed images, their clip indices, the clip length, and warnings."""

    images: np.ndarray  # [K, H, W, 3] in [0, 1]
    indices: list[int]
    num_frames: int
    warnings: list[str] = field(default_factory=list)


def frame_ranges(frames: list[int], limit: int = 12) -> str:
    """``[1, 2, 3, 7, 9, 10]`` -> ``"1-3, 7, 9-10"`` (at most ``limit`` ranges, then how many more)."""
    runs: list[list[int]] = []
    for f in sorted(frames):
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    return ", ".join(text[:limit]) + (f" and {len(text) - limit} more ranges" if len(text) > limit else "")


def _video_inputs(args: argparse.Namespace, defaults: ModelDefaults, height: int, width: int, time_stride: int) -> Inputs:
    """The video's frames after --stride and --max-frames, cut to k * time_stride + 1 when shorter than the
    window; every frame left out is named in a warning with the reasons."""
    notes: list[str] = []
    frames, total = read_video_clip(args.video, height, width, args.stride, args.max_frames, args.fit, notes)
    why = [f"--stride {args.stride}"] if args.stride > 1 else []
    if args.max_frames is not None and len(range(0, total, args.stride)) > args.max_frames:
        why.append(f"--max-frames {args.max_frames}")
    if len(frames) <= (args.window or defaults.frames) and (len(frames) - 1) % time_stride:
        frames = frames[: (len(frames) - 1) // time_stride * time_stride + 1]
        why.append(f"a clip within one window has {time_stride}k+1 frames")
    used = range(0, len(frames) * args.stride, args.stride)
    left_out = sorted(set(range(total)) - set(used))
    warnings = [f"{len(left_out)} of the video's {total} frames are not used ({'; '.join(why)}): frames {frame_ranges(left_out)}."] if left_out else []
    return Inputs(frames, list(range(len(frames))), len(frames), notes + warnings)


def gather_inputs(args: argparse.Namespace, defaults: ModelDefaults, height: int, width: int, time_stride: int) -> Inputs:
    """Images, the clip indices they stand for and the clip length, from the command-line options."""
    given = [bool(args.image), bool(args.video), bool(args.frames)]
    if sum(given) > 1:
        raise One4DInputError("give only one of --image, --video or --frames.")
    if args.video:
        if args.length:
            raise One4DInputError("--length is for generation; a --video is reconstructed at its own length (use --max-frames to cut it).")
        return _video_inputs(args, defaults, height, width, time_stride)
    length = args.length or defaults.frames
    notes: list[str] = []
    if args.image:
        return Inputs(read_image(args.image, height, width, args.fit, notes)[None], [0], length, notes)
    if args.frames:
        indices = parse_indices(args.indices or "", length, available=len(args.frames))
        return Inputs(np.stack([read_image(f, height, width, args.fit, notes) for f in args.frames]), indices, length, notes)
    return Inputs(np.zeros((0, height, width, 3), np.float32), [], length)


def run(args: argparse.Namespace) -> int:
    folder = ModelFolder.open(args.model)  # a wrong --model fails before the inputs are read
    defaults = request_defaults(args, folder.defaults)
    height, width = args.height or defaults.height, args.width or defaults.width
    window = args.window or defaults.frames
    overlap = defaults.overlap if args.overlap is None else args.overlap
    settings = sampling_settings(args, defaults)
    geometry = folder.geometry
    inputs = gather_inputs(args, defaults, height, width, geometry.time_stride)
    f = inputs.num_frames
    check_video(min(f, window), height, width, geometry=geometry)
    windows = len(plan_long_clip(f, window, overlap, inputs.indices))
    for warning in inputs.warnings:
        print(f"one4d run: warning: {warning}", file=sys.stderr)
    if defaults.notice:
        print(f"one4d run: note: {defaults.notice}", file=sys.stderr)
    torch.manual_seed(args.seed)
    t0 = time.time()
    pipe = One4DPipeline.from_folder(folder)
    pipe.defaults = defaults
    images = inputs.images if inputs.indices else None
    result = generate_long(pipe, f, height, width, images, inputs.indices, settings, window, overlap, args.text,
                           args.negative, callback=_progress("sampling"))
    full = np.full((f, height, width, 3), 0.5, np.float32)
    if inputs.indices:
        full[inputs.indices] = inputs.images
    paths = write_result_folder(args.out, result, full, args.fps, args.max_points)
    print(f"wrote {len(paths)} files to {args.out} in {time.time() - t0:.1f} s ({len(inputs.indices)} observed frame(s) of {f}"
          + (f", {windows} windows of {window} frames overlapping by {overlap})" if windows > 1 else ")"))
    for p in paths:
        print(f"  {p}")
    return 0


def add_parser(p: argparse.ArgumentParser) -> None:
    p.description = __doc__.splitlines()[0]
    p.add_argument("--image", help="one image: 4D generation from a single image")
    p.add_argument("--video", help="a video: 4D reconstruction from all frames")
    p.add_argument("--frames", nargs="+", help="several images, with --indices: sparse frames")
    p.add_argument("--indices", help="frame indices of --frames, e.g. '0,8,16' (or first / all / even:N)")
    p.add_argument("--text", default="", help="prompt (the embedded model knows words like 'red sphere', 'checkered room')")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--model", default="embedded",
                   help="'embedded' (the shipped CPU model) or a model folder: a `one4d train` --work folder, or one whose "
                        "model.json names real Wan2.1 files and the umT5 encoder (docs/model.md)")
    p.add_argument("--out", default="out", help="output folder")
    add_sampling_options(p)
    p.add_argument("--width", type=int, default=None, help="frame width (default: the model's, 64 embedded / 832 Wan)")
    p.add_argument("--height", type=int, default=None, help="frame height (default: the model's, 64 embedded / 480 Wan)")
    p.add_argument("--fit", choices=("crop", "pad"), default="crop",
                   help="pictures of another aspect ratio: crop the centre (default) or pad with gray (keeps all of it)")
    p.add_argument("--length", type=int, default=None,
                   help="frames to generate (default: the model window; longer clips run window by window)")
    p.add_argument("--window", type=int, default=None, help="frames per model window, 4k+1 (default: the model's, 17 embedded / 81 Wan)")
    p.add_argument("--overlap", type=int, default=None, help="frames shared by consecutive windows (default: 8 embedded / 16 Wan)")
    p.add_argument("--stride", type=int, default=1, help="--video: use every S-th frame")
    p.add_argument("--max-frames", type=int, default=None, help="--video: use at most M frames (after --stride)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of rgb.mp4")
    p.add_argument("--max-points", type=int, default=200_000, help="point budget of the merged PLY")
    p.set_defaults(handler=run)
