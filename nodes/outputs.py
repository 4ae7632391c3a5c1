"""One4D Save 4D and One4D Preview 4D.

Save 4D writes into ComfyUI's output folder through ``get_save_image_path`` (the prefix may name a
subfolder; '..', absolute paths and drive letters are refused) with ComfyUI's counter naming, e.g. for the
prefix ``one4d/scene``::

    output/one4d/scene_00001_.ply            merged point cloud (all frames, voxel-subsampled to max_points)
    output/one4d/scene_00001_.glb            the same as GLB (glTF axes) for core Preview3D / Blender
    output/one4d/scene_00001_.npz            points, colors, depth, valid, K, c2w (numpy, no pickle)
    output/one4d/scene_00001_cameras.json    per-frame K and poses (OpenCV; OpenGL/Blender matrices too)
    output/one4d/scene_00001_colmap/         COLMAP text model (cameras.txt, images.txt, points3D.txt)
    output/one4d/scene_00001_depth/          16-bit depth PNGs + depth_scale.json
    output/one4d/scene_00001_.o4dp           the payload of the 4D preview widget

Files are never overwritten: if any target of a counter exists, the next counter is used. Every file is
written atomically (temporary name, then rename; folders staged and moved in whole); if one export fails or
the prompt is cancelled (checked per frame while writing, :mod:`one4d.progress`), the files of that save are
removed. Exports that loop over frames fill ComfyUI's progress bar.

UI data: ``one4d_preview`` (the widget), ``3d`` (the GLB, with the keys core SaveGLB uses) and
``one4d_files`` (every file, for headless clients reading ``/history``).

Outputs, for core's 3D nodes: what they take (checked on ComfyUI 0.3.64 and its October 2025 master) is
a path relative to the output folder as a STRING: Preview3D's ``model_file`` socket, whose viewer
(frontend 1.27.10) reads .gltf, .glb, .obj, .fbx and .stl. Load3D takes a file uploaded into
``input/3d`` (a widget, not a socket), and neither version has a point-cloud preview node or a 3D file
type. ``model_file`` is the GLB (the PLY when no GLB is saved), for Preview3D; ``ply_file`` is the PLY
("" when none is saved), for viewers that read PLY (newer frontends' Load3D/Preview3D, point-cloud
nodes of other packs). The PLY keeps the library's axes (OpenCV: y down, z forward); the GLB is turned
to glTF's y-up.
"""
from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from one4d.errors import One4DInputError
from one4d.export import export_cameras_json, export_colmap, export_depth_pngs, export_glb, export_npz, export_ply
from one4d.export.preview_payload import write_preview_payload

from . import comfy_bridge as bridge
from .values import POINTMAP, PointmapData

log = logging.getLogger("one4d")
_MAX_COUNTER_TRIES = 10_000


def _colors_u8(pm: PointmapData) -> np.ndarray:
    return (np.clip(pm.colors, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _check_pointmap(pointmap) -> PointmapData:
    if not isinstance(pointmap, PointmapData):
        raise One4DInputError("pointmap must come from One4D Decode or One4D Cameras.")
    return pointmap


def _payload(path: Path, pm: PointmapData, max_points_per_frame: int, fps: float) -> dict:

    cams = pm.cameras
    return write_preview_payload(path, pm.points, _colors_u8(pm), pm.valid, None if cams is None else cams.K,
                                 None if cams is None else cams.c2w, max_points_per_frame=int(max_points_per_frame), fps=float(fps))


class One4DSave4D:
    DESCRIPTION = (
        "Saves the 4D result into the output folder: PLY / GLB point clouds, an NPZ bundle, cameras JSON, a COLMAP model and "
        "depth PNGs, never overwriting; shows the animated point cloud in the node."
    )
    CATEGORY = "One4D/output"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("model_file", "ply_file")
    OUTPUT_TOOLTIPS = (
        "The GLB (or PLY) path relative to the output folder; connect it to core Preview3D's model_file.",
        ("The PLY path relative to the output folder (empty when save_ply is off), for viewers that read PLY; "
         "the PLY keeps OpenCV axes (y down)."),
    )
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pointmap": (POINTMAP, {"tooltip": "The pointmap from One4D Cameras (or from One4D Decode when no camera files are wanted)."}),
                "filename_prefix": ("STRING", {"default": "one4d/scene",
                                               "tooltip": "Name of the files inside the output folder; may start with subfolders "
                                                          "('one4d/scene'). '..' and absolute paths are refused."}),
                "save_ply": ("BOOLEAN", {"default": True, "tooltip": "Merged binary PLY point cloud of all frames."}),
                "save_glb": ("BOOLEAN", {"default": True, "tooltip": "GLB point cloud (glTF axes): opens in core Preview3D, Blender, three.js."}),
                "save_npz": ("BOOLEAN", {"default": True, "tooltip": "NPZ with points, colors, depth, valid mask, K and poses (numpy)."}),
                "save_cameras_json": ("BOOLEAN", {"default": True, "tooltip": "Per-frame intrinsics and poses as JSON (needs One4D Cameras)."}),
                "save_colmap": ("BOOLEAN", {"default": False, "tooltip": "COLMAP text model of the cameras and points (needs One4D Cameras)."}),
                "save_depth_png": ("BOOLEAN", {"default": False, "tooltip": "16-bit depth PNG per frame with its scale (needs One4D Cameras)."}),
                "max_points": ("INT", {"default": 500_000, "min": 1_000, "max": 50_000_000, "step": 1_000,
                                       "tooltip": "Point budget of the merged PLY/GLB (voxel subsampling); the NPZ keeps every point."}),
                "fps": ("FLOAT", {"default": 8.0, "min": 0.5, "max": 60.0, "step": 0.5, "tooltip": "Playback speed of the preview in the node."}),
            }
        }

    def save(self, pointmap, filename_prefix, save_ply=True, save_glb=True, save_npz=True, save_cameras_json=True,
             save_colmap=False, save_depth_png=False, max_points=500_000, fps=8.0):
        pm = _check_pointmap(pointmap)
        wanted = [n for n, on in (("cameras_json", save_cameras_json), ("colmap", save_colmap), ("depth_png", save_depth_png)) if on]
        if wanted and pm.cameras is None:
            raise One4DInputError(
                f"save_{', save_'.join(wanted)} need cameras: pass the pointmap through One4D Cameras first, or turn "
                f"{'this' if len(wanted) == 1 else 'these'} off."
            )
        out_dir = bridge.output_directory()
        folder, filename, counter, subfolder = bridge.get_save_image_path(filename_prefix, out_dir)
        names = {"ply": ".ply", "glb": ".glb", "npz": ".npz", "cameras_json": "cameras.json", "colmap": "colmap",
                 "depth_png": "depth", "preview": ".o4dp"}
        enabled = {"ply": save_ply, "glb": save_glb, "npz": save_npz, "cameras_json": save_cameras_json,
                   "colmap": save_colmap, "depth_png": save_depth_png, "preview": True}
        for _ in range(_MAX_COUNTER_TRIES):
            base = f"{filename}_{counter:05}_"
            targets = {k: Path(folder) / (base + v) for k, v in names.items() if enabled[k]}
            if not any(p.exists() for p in targets.values()):
                break
            counter += 1
        else:
            raise One4DInputError(f"no free file name for prefix '{filename_prefix}' in {folder}; use another prefix.")
        os.makedirs(folder, exist_ok=True)
        try:
            with bridge.library_hook():
                self._write(pm, targets, int(max_points), float(fps))
        except BaseException:
            for p in targets.values():
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            raise
        rel = lambda p: {"filename": p.name, "subfolder": subfolder.replace(os.sep, "/"), "type": "output"}  # noqa: E731
        def relative(path: Path | None) -> str:  # the path as core's 3D nodes take it
            return "" if path is None else "/".join(x for x in (subfolder.replace(os.sep, "/"), path.name) if x)

        model_file = relative(targets.get("glb") or targets.get("ply"))
        ui = {"one4d_preview": [rel(targets["preview"])], "one4d_files": [rel(p) for k, p in targets.items() if k != "preview"]}
        if "glb" in targets:
            ui["3d"] = [rel(targets["glb"])]
        log.info("One4D: saved %s", ", ".join(p.name for p in targets.values()))
        return {"ui": ui, "result": (model_file, relative(targets.get("ply")))}

    @staticmethod
    def _write(pm: PointmapData, targets: dict, max_points: int, fps: float) -> None:
        colors = _colors_u8(pm)
        cams = pm.cameras
        f, h, w = pm.shape
        if "ply" in targets:
            export_ply(targets["ply"], pm.points, colors, pm.valid, max_points=max_points)
        if "glb" in targets:
            export_glb(targets["glb"], pm.points, colors, pm.valid, max_points=max_points)
        if "npz" in targets:
            export_npz(targets["npz"], pm.points, colors, pm.depth, pm.valid, None if cams is None else cams.K,
                       None if cams is None else cams.c2w,
                       normalization={**pm.normalization, "space": "normalized (no metric scale)", "frames": pm.space})
        if "cameras_json" in targets:
            export_cameras_json(targets["cameras_json"], cams.K, cams.c2w, w, h)
        if "colmap" in targets:
            export_colmap(targets["colmap"], cams.K, cams.c2w, w, h, pm.points, colors, pm.valid)
        if "depth_png" in targets:
            export_depth_pngs(targets["depth_png"], pm.depth, pm.valid)
        _payload(targets["preview"], pm, 200_000, fps)


class One4DPreview4D:
    DESCRIPTION = "Shows the animated 4D point cloud (every frame's points and cameras) inside the node, without saving files."
    CATEGORY = "One4D/output"
    RETURN_TYPES = ()
    FUNCTION = "preview"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pointmap": (POINTMAP, {"tooltip": "The pointmap from One4D Decode or One4D Cameras (cameras are drawn when known)."}),
                "max_points_per_frame": ("INT", {"default": 100_000, "min": 1_000, "max": 2_000_000, "step": 1_000,
                                                 "tooltip": "Points sent to the browser per frame (a uniform subsample)."}),
                "fps": ("FLOAT", {"default": 8.0, "min": 0.5, "max": 60.0, "step": 0.5, "tooltip": "Playback speed."}),
            }
        }

    def preview(self, pointmap, max_points_per_frame=100_000, fps=8.0):
        pm = _check_pointmap(pointmap)
        folder = Path(bridge.temp_directory()) / "one4d"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"preview_{uuid.uuid4().hex[:12]}.o4dp"
        with bridge.library_hook():
            _payload(folder / name, pm, int(max_points_per_frame), float(fps))
        return {"ui": {"one4d_preview": [{"filename": name, "subfolder": "one4d", "type": "temp"}]}}
