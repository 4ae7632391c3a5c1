"""``one4d run``: the main job. Frames + text -> RGB video, pointmaps, point cloud, cameras and a preview.

Inputs: ``--image`` (image-to-4D), ``--video`` (reconstruction from all frames), ``--frames`` with
``--indices`` (sparse), or only ``--text`` (text-to-4D). Outputs in ``--out``: the files of
:mod:`one4d.export.result_folder`, written together or not at all, so a failed or interrupted run never
leaves a partial set.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from ..data.media import read_image, read_video
from ..errors import One4DInputError
from ..export.result_folder import write_result_folder
from ..models import ModelFolder
from ..pipeline import One4DPipeline
from ..request import check_request
from ..umc import parse_indices
from .options import add_sampling_options, sampling_settings


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


def gather_inputs(args: argparse.Namespace, frames: int, height: int, width: int) -> tuple[np.ndarray, list[int]]:
    """Images and the frame indices they stand for, from the command-line options."""
    given = [bool(args.image), bool(args.video), bool(args.frames)]
    if sum(given) > 1:
        raise One4DInputError("give only one of --image, --video or --frames.")
    if args.image:
        return read_image(args.image, height, width)[None], [0]
    if args.video:
        video = read_video(args.video, height, width, frames)
        if len(video) < frames:
            raise One4DInputError(f"the video has {len(video)} frames; the model needs {frames}. Use --frames with --indices for fewer.")
        return video, list(range(frames))
    if args.frames:
        indices = parse_indices(args.indices or "", frames, available=len(args.frames))
        return np.stack([read_image(f, height, width) for f in args.frames]), indices
    return np.zeros((0, height, width, 3), np.float32), []


def run(args: argparse.Namespace) -> int:
    folder = ModelFolder.open(args.model)  # a wrong --model fails before the inputs are read
    defaults = folder.defaults
    frames, height, width = defaults.frames, defaults.height, defaults.width
    settings = sampling_settings(args, defaults)
    images, indices = gather_inputs(args, frames, height, width)
    check_request(frames, height, width, indices, settings.steps, settings.guidance, settings.shift, settings.scheduler)
    torch.manual_seed(args.seed)
    t0 = time.time()
    pipe = One4DPipeline.from_folder(folder)
    cond = pipe.condition(frames, height, width, torch.from_numpy(images) if len(indices) else None, indices,
                          prompt=args.text, negative_prompt=args.negative)
    result = pipe.generate(cond, settings, callback=_progress("sampling"))
    full = np.full((frames, height, width, 3), 0.5, np.float32)
    if indices:
        full[indices] = images
    paths = write_result_folder(args.out, result, full, args.fps, args.max_points)
    print(f"wrote {len(paths)} files to {args.out} in {time.time() - t0:.1f} s ({len(indices)} observed frame(s) of {frames})")
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
                   help="'embedded' (the shipped CPU model) or a model folder, e.g. a `one4d train` --work folder; "
                        "real Wan checkpoints run through the ComfyUI nodes")
    p.add_argument("--out", default="out", help="output folder")
    add_sampling_options(p)
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of rgb.mp4")
    p.add_argument("--max-points", type=int, default=200_000, help="point budget of the merged PLY")
    p.set_defaults(handler=run)
