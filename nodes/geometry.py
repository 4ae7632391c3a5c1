"""One4D Cameras: recover per-frame intrinsics, poses and depth from a pointmap video (one4d.geometry).

Cancel stops it within one piece of work (at most 64 frames, or one frame) and every stage (closed form,
refinement steps, depth, flying points, re-anchoring) fills ComfyUI's progress bar (:mod:`one4d.progress`).
"""
from __future__ import annotations

import logging
import time

import torch

from one4d.errors import One4DInputError
from one4d.geometry import anchor_to_first_camera, cameras_for_generated
from one4d.geometry import remove_flying_points as drop_flying_points

from . import comfy_bridge as bridge
from .imaging import depth_to_image
from .values import CAMERAS, POINTMAP, CameraData, PointmapData

log = logging.getLogger("one4d")


class One4DCameras:
    DESCRIPTION = (
        "Recovers the camera of every frame (intrinsics K in pixels, OpenCV camera-to-world pose) and per-frame depth from "
        "the pointmap video, and re-expresses the points in the first frame's camera. Needed by the camera, COLMAP and "
        "depth exports of One4D Save 4D."
    )
    CATEGORY = "One4D/geometry"
    RETURN_TYPES = (CAMERAS, "IMAGE", POINTMAP)
    RETURN_NAMES = ("cameras", "depth", "pointmap")
    OUTPUT_TOOLTIPS = (
        "Per-frame K [F,3,3] and camera-to-world poses [F,4,4] (OpenCV axes, frame 0 = identity).",
        "Per-frame z-depth as grey images (near = white, one range for the whole clip).",
        "The pointmap in the first camera's frame, with its cameras, depth and flying-point mask; connect it to Save/Preview 4D.",
    )
    FUNCTION = "recover"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pointmap": (POINTMAP, {"tooltip": "The pointmap from One4D Decode."}),
                "shared_focal": ("BOOLEAN", {"default": True,
                                             "tooltip": "One focal length for all frames (a camera that does not zoom); off lets it change per frame."}),
                "refine_iterations": ("INT", {"default": 100, "min": 0, "max": 2000,
                                              "tooltip": "Refinement steps after the closed-form solution (0 = closed form only)."}),
                "remove_flying_points": ("BOOLEAN", {"default": True,
                                                     "tooltip": "Mask points that hang between surfaces at depth edges."}),
            }
        }

    def recover(self, pointmap: PointmapData, shared_focal=True, refine_iterations=100, remove_flying_points=True):
        if not isinstance(pointmap, PointmapData):
            raise One4DInputError("pointmap must come from One4D Decode (or One4D Cameras).")
        t0 = time.perf_counter()
        # ComfyUI runs nodes under torch.inference_mode(); the refinement needs autograd.
        with bridge.library_hook(), torch.inference_mode(False), torch.enable_grad():
            est = cameras_for_generated(pointmap.points, pointmap.valid, shared_focal=bool(shared_focal), iters=int(refine_iterations))
            if remove_flying_points:
                est = drop_flying_points(est)
            points, c2w = anchor_to_first_camera(pointmap.points, est.c2w)
        f, h, w = pointmap.shape
        cams = CameraData(est.K.astype("float32"), c2w, w, h, est.focal)
        valid = est.valid & pointmap.valid
        out = pointmap.with_(points=points, valid=valid, space="anchored", cameras=cams, depth=est.depth.astype("float32"))
        log.info("One4D: cameras for %d frames in %.1f s (focal %.1f px)", f, time.perf_counter() - t0, float(est.focal.mean()))
        return (cams, depth_to_image(out.depth, valid), out)
