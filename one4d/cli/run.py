"""``one4d run``: the main job. Frames + text -> RGB video, pointmaps, point cloud, cameras and a preview.

Inputs: ``--image`` (image-to-4D), ``--video`` (reconstruction from all frames), ``--frames`` with
``--indices`` (sparse), or only ``--text`` (text-to-4D). Outputs in ``--out``: ``rgb.mp4``,
``pointmaps.npz``, ``pointcloud.ply``, ``cameras.json`` and ``preview.png``. Every file is first written
into a hidden staging folder inside ``--out`` and moved into place only when the whole run succeeded, so a
failed or interrupted run never leaves a partial set.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import torch

from ..errors import One4DInputError
from ..sampling import SamplerSettings

OUTPUTS = ("rgb.mp4", "pointmaps.npz", "pointcloud.ply", "cameras.json", "preview.png")


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
    from ..data.media import read_image, read_video
    from ..umc import parse_indices

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


def write_outputs(out: Path, result, inputs_full: np.ndarray, fps: float, max_points: int) -> list[Path]:
    """Write all outputs into a staging folder, then move them into ``out`` together."""
    from ..export import export_cameras_json, export_npz, export_ply
    from ..export.sheet import preview_sheet
    from ..export.video import write_png, write_video

    out.mkdir(parents=True, exist_ok=True)
    stage = out / f".staging-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        f, h, w, _ = result.rgb.shape
        colors = (np.clip(result.rgb, 0, 1) * 255).round().astype(np.uint8)
        write_video(stage / "rgb.mp4", result.rgb, fps)
        export_npz(stage / "pointmaps.npz", result.points, colors, result.depth, result.valid, result.K, result.c2w,
                   normalization={**result.normalization.to_dict(), "space": "normalized (no metric scale)"})
        export_ply(stage / "pointcloud.ply", result.points, colors, result.valid, max_points=max_points)
        export_cameras_json(stage / "cameras.json", result.K, result.c2w, w, h)
        write_png(stage / "preview.png", preview_sheet(inputs_full, result.rgb, result.depth, result.valid, result.points, result.K))
        moved = []
        for name in OUTPUTS:
            (stage / name).replace(out / name)
            moved.append(out / name)
        return moved
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def run(args: argparse.Namespace) -> int:
    from ..training import recipe as emb
    from ..pipeline import One4DPipeline

    emb.model_dir(args.model)  # a wrong --model fails before the inputs are read
    frames, height, width = emb.FRAMES, emb.HEIGHT, emb.WIDTH
    images, indices = gather_inputs(args, frames, height, width)
    torch.manual_seed(args.seed)
    t0 = time.time()
    pipe = One4DPipeline.embedded(args.model)
    cond = pipe.condition(frames, height, width, torch.from_numpy(images) if len(indices) else None, indices,
                          prompt=args.text, negative_prompt=args.negative)
    settings = SamplerSettings(steps=args.steps, guidance=args.guidance, shift=args.shift, scheduler=args.scheduler, seed=args.seed)
    result = pipe.generate(cond, settings, callback=_progress("sampling"))
    full = np.full((frames, height, width, 3), 0.5, np.float32)
    if indices:
        full[indices] = images
    paths = write_outputs(Path(args.out), result, full, args.fps, args.max_points)
    print(f"wrote {len(paths)} files to {args.out} in {time.time() - t0:.1f} s ({len(indices)} observed frame(s) of {frames})")
    for p in paths:
        print(f"  {p}")
    return 0


def add_parser(p: argparse.ArgumentParser) -> None:
    from ..training import recipe as emb

    p.description = __doc__.splitlines()[0]
    p.add_argument("--image", help="one image: 4D generation from a single image")
    p.add_argument("--video", help="a video: 4D reconstruction from all frames")
    p.add_argument("--frames", nargs="+", help="several images, with --indices: sparse frames")
    p.add_argument("--indices", help="frame indices of --frames, e.g. '0,8,16' (or first / all / even:N)")
    p.add_argument("--text", default="", help="prompt (the embedded model knows words like 'red sphere', 'checkered room')")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--model", default="embedded",
                   help="'embedded' (the shipped CPU model) or a folder with its three files, e.g. a `one4d train` --work folder; "
                        "real Wan checkpoints run through the ComfyUI nodes")
    p.add_argument("--out", default="out", help="output folder")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--guidance", type=float, default=emb.GUIDANCE, help="classifier-free guidance (1: none)")
    p.add_argument("--shift", type=float, default=3.0)
    p.add_argument("--scheduler", default="unipc", choices=("unipc", "euler"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--max-points", type=int, default=200_000, help="point budget of the merged PLY")
    p.set_defaults(handler=run)
