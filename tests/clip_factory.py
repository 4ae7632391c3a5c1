"""Tiny 4D sequences with known geometry for the clip and dataset tests: a tilted plane, a moving camera.

Everything is computed here from first principles (OpenCV axes: x right, y down, z forward), independently of
the library's readers, so a wrong conversion in a reader makes the tests fail.
"""
from __future__ import annotations

import numpy as np

PLANE_NORMAL = np.array([0.3, -0.2, -1.0]) / np.linalg.norm([0.3, -0.2, -1.0])
PLANE_POINT = np.array([0.0, 0.0, 5.0])
PLANE_OFFSET = float(PLANE_NORMAL @ PLANE_POINT)  # the plane: n . X = d


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world ``[4, 4]`` at ``eye`` looking at ``target``, world +y as the image's down."""
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross([0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    c2w[:3, 3] = eye
    return c2w


def plane_cameras(frames: int) -> np.ndarray:
    """``[F, 4, 4]`` OpenCV camera-to-world poses drifting sideways and forward while looking at the plane."""
    return np.stack([look_at(np.array([0.15 * i, -0.08 * i, 0.2 * i]), PLANE_POINT + [0.1 * i, 0.05 * i, 0.0])
                     for i in range(frames)])


def intrinsics(height: int, width: int, focal: float = 20.0) -> np.ndarray:
    """``[3, 3]`` pinhole with the principal point slightly off the center."""
    return np.array([[focal, 0.0, width / 2.0 - 0.3], [0.0, focal * 1.05, height / 2.0 + 0.2], [0.0, 0.0, 1.0]])


def plane_depth(K: np.ndarray, c2w: np.ndarray, height: int, width: int) -> np.ndarray:
    """z-depth ``[F, H, W]`` of the plane seen by each camera (rays through pixel centers at integer coordinates)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    K = np.broadcast_to(K, (len(c2w), 3, 3))
    out = []
    for Ki, T in zip(K, c2w):
        rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(Ki).T  # camera rays with z = 1
        world_dirs = rays @ T[:3, :3].T
        out.append((PLANE_OFFSET - PLANE_NORMAL @ T[:3, 3]) / (world_dirs @ PLANE_NORMAL))
    return np.stack(out)


def plane_distance(points_world: np.ndarray) -> np.ndarray:
    """Signed distance of world points ``[..., 3]`` to the plane."""
    return points_world @ PLANE_NORMAL - PLANE_OFFSET


def to_world(points: np.ndarray, c2w0: np.ndarray) -> np.ndarray:
    """Points ``[..., 3]`` given in the first camera's frame, moved to the world by that camera's ``c2w0``."""
    return points.astype(np.float64) @ c2w0[:3, :3].T + c2w0[:3, 3]


def random_rgb(frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``[F, H, W, 3]`` uint8 noise frames."""
    return np.random.default_rng(seed).integers(0, 256, (frames, height, width, 3), dtype=np.uint8)
