"""The output folder of one 4D clip, as ``one4d run`` writes it: every file, or none.

``rgb.mp4`` (the RGB video), ``pointmaps.npz`` (points, colors, depth, validity, K, c2w and the
normalization; :func:`one4d.export.load_npz` reads it), ``pointcloud.ply`` (all frames merged, within a
point budget), ``cameras.json`` (every convention) and ``preview.png`` (input | RGB | depth | point cloud).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..geometry.result import One4DResult
from .atomic import atomic_folder
from .bundle import export_npz
from .cameras import export_cameras_json
from .pointcloud import export_ply
from .sheet import preview_sheet
from .video import write_png, write_video

OUTPUTS = ("rgb.mp4", "pointmaps.npz", "pointcloud.ply", "cameras.json", "preview.png")


def write_result_folder(out: str | Path, result: One4DResult, inputs_full: np.ndarray, fps: float, max_points: int) -> list[Path]:
    """Write :data:`OUTPUTS` for ``result`` into ``out`` together; ``inputs_full`` holds the observed frames
    at their indices (gray elsewhere) for the preview."""
    out = Path(out)
    with atomic_folder(out) as stage:
        h, w = result.rgb.shape[1:3]
        colors = (np.clip(result.rgb, 0, 1) * 255).round().astype(np.uint8)
        write_video(stage / "rgb.mp4", result.rgb, fps)
        export_npz(stage / "pointmaps.npz", result.points, colors, result.depth, result.valid, result.K, result.c2w,
                   normalization={**result.normalization.to_dict(), "space": "normalized (no metric scale)"})
        export_ply(stage / "pointcloud.ply", result.points, colors, result.valid, max_points=max_points)
        export_cameras_json(stage / "cameras.json", result.K, result.c2w, w, h)
        write_png(stage / "preview.png", preview_sheet(inputs_full, result.rgb, result.depth, result.valid, result.points, result.K))
    return [out / name for name in OUTPUTS]
