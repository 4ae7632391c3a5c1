"""Vectorized analytic ray caster: one ray per pixel and frame, nearest hit, Lambert shading, object shadows.

Rays are built from the *stored* (float32-rounded) intrinsics and poses, in the frame-0 camera ("world"), with
camera-frame directions ``K^-1 [u, v, 1]`` whose z component is 1. The hit parameter is therefore the z-depth,
and the world point is exactly ``c2w @ [depth * K^-1 [u, v, 1], 1]`` (computed in float64, stored as float32).
Intersection and shading happen in the room frame (reached through the frame-0 camera-to-room pose).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .camera_paths import CameraPath
from .motion import Trajectory
from .shapes import Room, Shape


@dataclass
class SceneObject:
    """A shape moving along a trajectory."""

    shape: Shape
    trajectory: Trajectory
    resting: bool  # sits on the floor (upright, yaw-only rotation)


@dataclass
class Light:
    """A directional light plus ambient light (the shade floor of unlit surfaces)."""

    direction: np.ndarray  # unit vector from surfaces toward the light, room frame
    ambient: float


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Homogeneous pixel coordinates [H*W, 3] in row-major order: ``(u, v, 1)`` with u = column, v = row.

    Pixel centers sit at integer coordinates (the OpenCV convention).
    """
    v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    return np.stack([u.ravel(), v.ravel(), np.ones(height * width)], axis=1)


def _camera_rays(camera: CameraPath, K: np.ndarray, c2w: np.ndarray, height: int,
                 width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel rays of every frame: world directions (z = 1 in the camera) and origins in float64, and the
    same rays in the room frame in float32 (intersection and shading run in float32: memory traffic dominates)."""
    n_frames = len(K)
    K64 = K.astype(np.float64)
    c2w64 = c2w.astype(np.float64)
    fx, fy, cx, cy = K64[:, 0, 0], K64[:, 1, 1], K64[:, 0, 2], K64[:, 1, 2]
    k_inv = np.zeros((n_frames, 3, 3))
    k_inv[:, 0, 0], k_inv[:, 0, 2] = 1.0 / fx, -cx / fx
    k_inv[:, 1, 1], k_inv[:, 1, 2] = 1.0 / fy, -cy / fy
    k_inv[:, 2, 2] = 1.0
    pix = pixel_grid(height, width)  # [N, 3]
    d_cam = pix[None] @ np.swapaxes(k_inv, 1, 2)  # [F, N, 3], z == 1
    d_world = d_cam @ np.swapaxes(c2w64[:, :3, :3], 1, 2)
    o_world = c2w64[:, :3, 3]  # [F, 3]
    to_room = camera.poses(np.zeros(1))[0]  # frame-0 camera-to-room
    rot0, t0 = to_room[:3, :3], to_room[:3, 3]
    d_room = (d_world @ rot0.T).astype(np.float32)
    o_room = (o_world @ rot0.T + t0).astype(np.float32)  # [F, 3]
    return d_world, o_world, d_room, o_room


def _intersect_objects(objects: list[SceneObject], poses: list, o_room: np.ndarray, d_room: np.ndarray,
                       t_best: np.ndarray, surface_id: np.ndarray) -> None:
    """Lower ``t_best`` and set ``surface_id`` (6 + k) in place where object k is hit before the room."""
    n_rays = d_room.shape[1]
    d_sq = np.einsum("fnk,fnk->fn", d_room, d_room)
    for k, (obj, (centers, rots)) in enumerate(zip(objects, poses)):
        # cull with the bounding sphere, then intersect exactly in the object's frame
        oc = o_room - centers  # [F, 3]
        b = np.einsum("fnk,fk->fn", d_room, oc)
        c = np.einsum("fk,fk->f", oc, oc)[:, None] - np.float32(obj.shape.bounding_radius**2)
        candidates = np.flatnonzero(b * b - d_sq * c > 0)
        if candidates.size == 0:
            continue
        fi = candidates // n_rays
        r = rots[fi]
        o_local = np.einsum("mji,mj->mi", r, oc[fi])
        d_local = np.einsum("mji,mj->mi", r, d_room.reshape(-1, 3)[candidates])
        t_obj = obj.shape.intersect(o_local, d_local)
        t_flat, id_flat = t_best.reshape(-1), surface_id.reshape(-1)
        closer = t_obj < t_flat[candidates]
        t_flat[candidates[closer]] = t_obj[closer]
        id_flat[candidates[closer]] = 6 + k


def _surface_attributes(room: Room, objects: list[SceneObject], poses: list, p_sorted: np.ndarray,
                        frame_sorted: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Albedo and normal of hit points sorted by surface id (``starts`` delimits each surface's slice)."""
    albedo = np.zeros_like(p_sorted)
    normal = np.zeros_like(p_sorted)
    for sid in range(6 + len(objects)):
        lo, hi = starts[sid + 1], starts[sid + 2]
        if lo == hi:
            continue
        p = p_sorted[lo:hi]
        if sid < 6:
            n, s, t = room.surface(sid, p)
            albedo[lo:hi] = room.textures[sid](s, t)
        else:
            obj = objects[sid - 6]
            centers, rots = poses[sid - 6]
            fi = frame_sorted[lo:hi]
            r = rots[fi]
            p_local = np.einsum("mji,mj->mi", r, p - centers[fi])
            n_local, s, t = obj.shape.surface(p_local)
            n = np.einsum("mij,mj->mi", r, n_local)
            albedo[lo:hi] = obj.shape.texture(s, t)
        normal[lo:hi] = n
    return albedo, normal


def _shade(room: Room, objects: list[SceneObject], poses: list, light: Light, p_room: np.ndarray, valid: np.ndarray,
           surface_id: np.ndarray, shadows: bool) -> np.ndarray:
    """Lambert shading with ambient light and object shadows, ``[F * N, 3]`` in ray order."""
    n_rays = p_room.shape[1]
    # shade surface by surface on rays sorted by surface id (contiguous slices instead of repeated masks)
    sid_flat = np.where(valid, surface_id, -1).reshape(-1).astype(np.int16)
    order = np.argsort(sid_flat, kind="stable")
    starts = np.searchsorted(sid_flat[order], np.arange(-1, 6 + len(objects) + 1))
    p_sorted = p_room.reshape(-1, 3)[order]
    frame_sorted = order // n_rays
    albedo, normal = _surface_attributes(room, objects, poses, p_sorted, frame_sorted, starts)
    light_dir = light.direction.astype(np.float32)
    lambert = np.clip(normal @ light_dir, 0.0, None)
    if shadows and objects:
        lifted = p_sorted + np.float32(1e-3) * normal  # off the surface, so it does not shadow itself
        lambert *= _unshadowed(lifted, frame_sorted, light_dir, objects, poses, lambert > 0)
    shade = np.float32(light.ambient) + np.float32(1.0 - light.ambient) * lambert
    rgb = np.zeros_like(p_sorted)
    rgb[order] = np.clip(albedo * shade[:, None], 0.0, 1.0)
    return rgb


def cast(
    room: Room,
    objects: list[SceneObject],
    light: Light,
    camera: CameraPath,
    times: np.ndarray,
    K: np.ndarray,
    c2w: np.ndarray,
    height: int,
    width: int,
    shadows: bool = True,
) -> dict[str, np.ndarray]:
    """Render all frames. ``K`` [F, 3, 3] and ``c2w`` [F, 4, 4] are the stored float32 cameras.

    Returns float32 ``rgb`` [F, H, W, 3], ``depth`` [F, H, W], ``points`` [F, H, W, 3], bool ``valid`` and int16
    ``surface`` [F, H, W]: 0-5 the room faces (``shapes.ROOM_FACES`` order), 6 + k object k, -1 nothing.
    """
    d_world, o_world, d_room, o_room = _camera_rays(camera, K, c2w, height, width)
    t_best, surface_id = (np.ascontiguousarray(a) for a in room.intersect(o_room[:, None, :], d_room))
    poses = [
        (obj.trajectory.centers(times).astype(np.float32), obj.trajectory.rotations(times).astype(np.float32))
        for obj in objects
    ]
    _intersect_objects(objects, poses, o_room, d_room, t_best, surface_id)
    valid = np.isfinite(t_best) & (t_best > 0)
    t_safe = np.where(valid, t_best, np.float32(0.0))
    p_room = o_room[:, None, :] + t_safe[..., None] * d_room
    rgb = _shade(room, objects, poses, light, p_room, valid, surface_id, shadows)
    points = o_world[:, None, :] + t_safe[..., None].astype(np.float64) * d_world  # lifted in float64
    shape = (len(times), height, width)
    return {
        "rgb": rgb.reshape(shape + (3,)).astype(np.float32),
        "depth": t_safe.reshape(shape).astype(np.float32),
        "points": points.reshape(shape + (3,)).astype(np.float32),
        "valid": valid.reshape(shape),
        "surface": np.where(valid, surface_id, -1).reshape(shape).astype(np.int16),
    }


def _unshadowed(p: np.ndarray, frame: np.ndarray, light_dir: np.ndarray, objects: list[SceneObject], poses: list,
                lit: np.ndarray) -> np.ndarray:
    """Per point [M]: 1.0 where the light is visible, 0.0 where an object blocks it. Only ``lit`` points are tested.

    ``p`` [M, 3] are room-frame points (already pushed off their surface), ``frame`` [M] their frame indices.
    """
    out = np.ones(len(p), dtype=np.float32)
    lit_idx = np.flatnonzero(lit)
    if lit_idx.size == 0:
        return out
    fi_all = frame[lit_idx]
    p_all = p[lit_idx]
    blocked = np.zeros(len(p_all), dtype=bool)
    for obj, (centers, rots) in zip(objects, poses):
        # bounding-sphere cull along the (unit) light direction, then the exact test
        oc = p_all - centers[fi_all]
        b = oc @ light_dir
        disc = b * b - (np.einsum("mk,mk->m", oc, oc) - np.float32(obj.shape.bounding_radius**2))
        cand = np.flatnonzero((disc > 0) & (np.sqrt(np.maximum(disc, 0.0)) > b) & ~blocked)
        if cand.size == 0:
            continue
        r = rots[fi_all[cand]]
        o_local = np.einsum("mji,mj->mi", r, oc[cand])
        d_local = np.einsum("mji,j->mi", r, light_dir)
        blocked[cand] |= np.isfinite(obj.shape.intersect(o_local, d_local))
    out[lit_idx] = np.where(blocked, np.float32(0.0), np.float32(1.0))
    return out
