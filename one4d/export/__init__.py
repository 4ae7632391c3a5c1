"""Exports for 3D tools: PLY, GLB, NPZ, depth PNG/EXR, cameras JSON and COLMAP text models.

Every writer states its coordinate convention (module docstrings; summary in docs/geometry.md) and
converts explicitly from the library's: world = camera of frame 0, OpenCV axes (x right, y down,
z forward), ``K [F,3,3]`` pixels, ``c2w [F,4,4]`` OpenCV camera-to-world. Files are written to a
temporary name in the target folder and renamed into place (folders of files: staged beside the target
and moved in together), so a crash never leaves a half file. Writers check for a cancel
(:mod:`one4d.progress`) per frame or piece and before each rename; a cancelled export leaves nothing.

Public API::

    export_ply(path, points, colors=None, valid=None, max_points=None, voxel_size=None) -> Path
    export_ply_frames(folder, points, colors=None, valid=None, prefix="frame_") -> list[Path]
    export_glb(path, points, colors=None, valid=None, max_points=1_000_000, voxel_size=None, axes="gltf") -> Path
    export_npz(path, points, colors=None, depth=None, valid=None, K=None, c2w=None, normalization=None) -> Path
    load_npz(path) -> dict
    export_depth_png(path, depth, valid=None, scale=None) -> float            # one [H, W] map
    export_depth_pngs(folder, depth, valid=None, scale=None) -> (list[Path], float)
    read_depth_png(path) -> (depth, valid)
    export_depth_exr(path, depth, valid=None) -> Path | None                 # None when OpenCV lacks EXR
    exr_available() -> bool
    export_cameras_json(path, K, c2w, width, height, image_names=None) -> Path
    export_colmap(folder, K, c2w, width, height, points=None, colors=None, valid=None, max_points=100_000) -> list[Path]
    voxel_subsample(xyz, rgb, max_points=None, voxel_size=None) -> (xyz, rgb, voxel)
"""
from __future__ import annotations

from .bundle import export_npz, load_npz
from .cameras import camera_record, export_cameras_json, export_colmap, rotation_to_quaternion
from .depth import (
    exr_available,
    export_depth_exr,
    export_depth_png,
    export_depth_pngs,
    read_depth_png,
    read_png_text,
)
from .pointcloud import collect_points, export_glb, export_ply, export_ply_frames, voxel_subsample, write_ply

__all__ = [
    "camera_record",
    "collect_points",
    "export_cameras_json",
    "export_colmap",
    "export_depth_exr",
    "export_depth_png",
    "export_depth_pngs",
    "export_glb",
    "export_npz",
    "export_ply",
    "export_ply_frames",
    "exr_available",
    "load_npz",
    "read_depth_png",
    "read_png_text",
    "rotation_to_quaternion",
    "voxel_subsample",
    "write_ply",
]
