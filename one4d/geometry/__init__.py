"""Geometry from pointmaps: cameras and depth, Sim(3) alignment, long-video stitching, flying points.

Conventions (binding): pointmaps ``[F, H, W, 3]`` float32 in the frame-0 camera with OpenCV axes
(x right, y down, z forward); ``K [F, 3, 3]`` in pixels (pixel centers at integer coordinates,
principal point at ((W-1)/2, (H-1)/2)); poses camera-to-world ``c2w [F, 4, 4]`` (OpenCV); depth is
z-depth. Bad input raises :class:`one4d.errors.One4DInputError`. Numpy arrays in and out (torch
tensors are accepted as input).

Public API::

    recover_cameras(points, valid=None, shared_focal=True, iters=100, smooth_weight=0.01, lr=1e-3,
                    refine_points=4096, outlier_k=4.0, min_outlier_offset=0.01) -> CameraEstimate
        CameraEstimate(K, c2w, depth, valid, focal, stats); .w2c; .points()
    unproject_depth(depth, K, c2w) -> points        project_points(points, K, c2w) -> (uv, z)
    intrinsics_from_focal(focal, height, width) -> K
    umeyama(src, dst, weights=None, with_scale=True) -> Sim3
    robust_umeyama(src, dst, weights=None, with_scale=True) -> (Sim3, weights)
        Sim3(scale, rotation, translation); .apply(points); .apply_to_poses(c2w); .inverse(); .compose()
    plan_windows(num_frames, window=81, overlap=16) -> [(start, stop), ...]
    stitch_windows(windows, spans, valid=None, robust=True) -> StitchResult(points, valid, transforms, overlap_error)
    flying_point_mask(depth, valid=None, rel_threshold=0.1, radius=1, mode="edge") -> mask
    remove_flying_points(estimate, ...) -> CameraEstimate
    make_sequence(frames, height, width, focal, path, seed, noise, outliers, zoom) -> SyntheticSequence
    cameras_for_generated(points, valid=None, **recover_kwargs) -> CameraEstimate   # fixed cameras on failure
    anchor_to_first_camera(points, c2w) -> (points, c2w)
    assemble_result(rgb, normalized_points, indices, recover=True) -> One4DResult

Module docstrings record the decisions the paper leaves open (weights, optimizer, iterations, focal
sharing, window planning, blending, flying-point rule); docs/geometry.md summarizes them with measurements.
"""
from __future__ import annotations

from .align import Sim3, robust_umeyama, umeyama
from .cameras import CameraEstimate, recover_cameras
from .flying import flying_point_mask, remove_flying_points
from .projection import (
    intrinsics_from_focal,
    nearest_rotation,
    principal_point,
    project_points,
    rotation_angle_deg,
    unproject_depth,
)
from .result import One4DResult, anchor_to_first_camera, assemble_result, cameras_for_generated
from .stitch import StitchResult, plan_windows, stitch_windows
from .synthetic import SyntheticSequence, make_sequence

__all__ = [
    "CameraEstimate",
    "One4DResult",
    "Sim3",
    "StitchResult",
    "SyntheticSequence",
    "anchor_to_first_camera",
    "assemble_result",
    "cameras_for_generated",
    "flying_point_mask",
    "intrinsics_from_focal",
    "make_sequence",
    "nearest_rotation",
    "plan_windows",
    "principal_point",
    "project_points",
    "recover_cameras",
    "remove_flying_points",
    "robust_umeyama",
    "rotation_angle_deg",
    "stitch_windows",
    "umeyama",
    "unproject_depth",
]
