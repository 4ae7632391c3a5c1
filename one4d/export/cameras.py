"""Cameras for other tools: a JSON file with every common convention, and a COLMAP text model.

Library convention (input): ``K [F,3,3]`` in pixels with pixel centers at integer coordinates (OpenCV),
``c2w [F,4,4]`` camera-to-world with OpenCV camera axes (x right, y down, z forward); world = frame-0
camera. Conversions, all explicit:

- ``c2w_opencv`` / ``w2c_opencv``: as stored.
- ``c2w_opengl``: same world, OpenGL/Blender camera axes (x right, y up, looking down -z):
  ``c2w_opencv @ diag(1, -1, -1, 1)``.
- ``c2w_gltf``: the world of our GLB export (glTF axes, y up: ``(x, y, z) -> (x, -y, -z)``) with OpenGL
  camera axes, for three.js next to that GLB: ``G @ c2w_opencv @ G`` with ``G = diag(1, -1, -1, 1)``.
- ``blender_matrix_world``: Blender's Z-up world (``(x, y, z)_opencv -> (x, z, -y)``, what Blender's glTF
  importer makes of our GLB) with Blender camera axes: ``B @ c2w_opencv @ G``.
  Lens: ``blender_lens_mm`` for a 36 mm wide sensor (sensor fit horizontal), shifts for an off-center
  principal point in units of the larger image side.
- COLMAP: world-to-camera rotation as a unit quaternion ``QW QX QY QZ`` (w >= 0) and translation
  ``TX TY TZ``; camera axes are OpenCV's; COLMAP puts pixel centers at +0.5, so ``cx, cy`` are shifted by
  0.5. ``PINHOLE`` cameras (one shared camera when all frames have the same K). ``points3D.txt`` holds
  the (subsampled) colored points with error 0 and an empty track; ``images.txt`` has empty 2D point lines.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import One4DInputError
from ..geometry.inputs import as_intrinsics, as_poses
from .atomic import atomic_folder, prepare_path, write_bytes_atomic
from .pointcloud import collect_points, voxel_subsample

G = np.diag([1.0, -1.0, -1.0, 1.0])  # OpenCV <-> OpenGL axes (also OpenCV world -> glTF world)
B = np.array([[1.0, 0, 0, 0], [0, 0, 1.0, 0], [0, -1.0, 0, 0], [0, 0, 0, 1.0]])  # OpenCV world -> Blender Z-up

CONVENTION_TEXT = {
    "world": "camera of frame 0; OpenCV axes x right, y down, z forward; pointmap units",
    "K": "pixels; pixel (u, v) = (column, row) with centers at integer coordinates (OpenCV)",
    "c2w_opencv": "camera-to-world, OpenCV camera axes (x right, y down, z forward)",
    "w2c_opencv": "world-to-camera, inverse of c2w_opencv",
    "c2w_opengl": "camera-to-world in the same world, OpenGL camera axes (x right, y up, looking down -z) = c2w_opencv @ diag(1,-1,-1,1)",
    "c2w_gltf": "camera-to-world in the GLB export's world (glTF, y up: (x,y,z)->(x,-y,-z)), OpenGL camera axes",
    "blender_matrix_world": "Blender camera matrix_world in Blender's Z-up world ((x,y,z)_opencv -> (x,z,-y)), as Blender imports our GLB",
    "blender_lens_mm": "focal length for a 36 mm wide sensor, sensor_fit HORIZONTAL",
    "blender_shift": "principal point offset as Blender shift_x/shift_y (units of the larger image side)",
}


def _checked(K: Any, c2w: Any, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer)) and width > 0 and height > 0):
        raise One4DInputError(f"width={width!r}, height={height!r}; pass the image size in pixels as positive integers.")
    P = as_poses(c2w, None, "c2w")
    Km = as_intrinsics(K, P.shape[0], "K")
    return Km, P


def camera_record(K: np.ndarray, c2w: np.ndarray, width: int, height: int) -> dict[str, Any]:
    """All conventions of one camera (``K [3,3]``, OpenCV ``c2w [4,4]``) as plain JSON-able values."""
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    c2w = np.asarray(c2w, dtype=np.float64)
    longest = float(max(width, height))
    return {
        "fx": fx, "fy": fy, "cx": cx, "cy": cy,
        "K": np.asarray(K, dtype=np.float64).tolist(),
        "fov_x_deg": float(np.degrees(2 * np.arctan(width / (2 * fx)))),
        "fov_y_deg": float(np.degrees(2 * np.arctan(height / (2 * fy)))),
        "c2w_opencv": c2w.tolist(),
        "w2c_opencv": np.linalg.inv(c2w).tolist(),
        "c2w_opengl": (c2w @ G).tolist(),
        "c2w_gltf": (G @ c2w @ G).tolist(),
        "blender_matrix_world": (B @ c2w @ G).tolist(),
        "blender_lens_mm": fx * 36.0 / width,
        "blender_shift_x": (width / 2.0 - (cx + 0.5)) / longest,
        "blender_shift_y": ((cy + 0.5) - height / 2.0) / longest,
    }


def export_cameras_json(
    path: str | os.PathLike, K: Any, c2w: Any, width: int, height: int, image_names: Sequence[str] | None = None
) -> Path:
    """Write ``{"convention": ..., "width", "height", "frames": [camera_record + index, name]}`` atomically."""
    Km, P = _checked(K, c2w, width, height)
    names = _names(image_names, P.shape[0])
    frames = []
    for i in range(P.shape[0]):
        rec = {"index": i, "image_name": names[i]}
        rec.update(camera_record(Km[i], P[i], int(width), int(height)))
        frames.append(rec)
    doc = {"format": "one4d-cameras", "version": 1, "convention": CONVENTION_TEXT,
           "width": int(width), "height": int(height), "frames": frames}
    path = prepare_path(path, ".json")
    return write_bytes_atomic(path, json.dumps(doc, indent=1).encode())


def _names(image_names: Sequence[str] | None, n: int) -> list[str]:
    if image_names is None:
        return [f"frame_{i:05d}.png" for i in range(n)]
    names = [str(s) for s in image_names]
    if len(names) != n or any((not s) or any(c.isspace() for c in s) for s in names):
        raise One4DInputError(f"image_names needs {n} non-empty names without spaces (COLMAP splits lines on spaces).")
    return names


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Unit quaternion ``[w, x, y, z]`` (w >= 0) of a rotation matrix (trimesh's conversion)."""
    from trimesh.transformations import quaternion_from_matrix

    M = np.eye(4)
    M[:3, :3] = R
    q = np.asarray(quaternion_from_matrix(M), dtype=np.float64)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def export_colmap(
    folder: str | os.PathLike,
    K: Any,
    c2w: Any,
    width: int,
    height: int,
    points: Any = None,
    colors: Any = None,
    valid: Any = None,
    max_points: int | None = 100_000,
    image_names: Sequence[str] | None = None,
) -> list[Path]:
    """Write a COLMAP text model (cameras.txt, images.txt, points3D.txt) into ``folder``, the three together."""
    Km, P = _checked(K, c2w, width, height)
    F = P.shape[0]
    names = _names(image_names, F)
    out = Path(folder)

    shared = bool(np.allclose(Km, Km[:1], rtol=1e-7, atol=1e-9))
    cams = Km[:1] if shared else Km
    lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
             "# One4D export: PINHOLE fx fy cx cy, COLMAP pixel centers at +0.5", f"# Number of cameras: {len(cams)}"]
    for j, k in enumerate(cams):
        lines.append(f"{j + 1} PINHOLE {int(width)} {int(height)} {k[0, 0]:.10g} {k[1, 1]:.10g} "
                     f"{k[0, 2] + 0.5:.10g} {k[1, 2] + 0.5:.10g}")
    cam_txt = "\n".join(lines) + "\n"

    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)",
             "# One4D export: world-to-camera rotation (quaternion) and translation, OpenCV camera axes; no 2D points",
             f"# Number of images: {F}, mean observations per image: 0"]
    for i in range(F):
        w2c = np.linalg.inv(P[i])
        q = rotation_to_quaternion(w2c[:3, :3])
        t = w2c[:3, 3]
        cam_id = 1 if shared else i + 1
        lines.append(f"{i + 1} {q[0]:.12g} {q[1]:.12g} {q[2]:.12g} {q[3]:.12g} {t[0]:.12g} {t[1]:.12g} {t[2]:.12g} "
                     f"{cam_id} {names[i]}")
        lines.append("")
    img_txt = "\n".join(lines) + "\n"

    lines = ["# 3D point list with one line of data per point:",
             "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)"]
    n_pts = 0
    if points is not None:
        xyz, rgb = collect_points(points, colors, valid)
        xyz, rgb, _ = voxel_subsample(xyz, rgb, max_points)
        n_pts = xyz.shape[0]
        lines.append(f"# Number of points: {n_pts}, mean track length: 0")
        ids = np.arange(1, n_pts + 1)
        body = np.char.mod("%d", ids)
        rows = [f"{i} {x:.7g} {y:.7g} {z:.7g} {r} {g} {b} 0" for i, (x, y, z), (r, g, b)
                in zip(body.tolist(), xyz.tolist(), rgb.tolist())]
        lines.extend(rows)
    else:
        lines.append("# Number of points: 0, mean track length: 0")
    pts_txt = "\n".join(lines) + "\n"

    files = {"cameras.txt": cam_txt, "images.txt": img_txt, "points3D.txt": pts_txt}
    with atomic_folder(out) as stage:
        for name, txt in files.items():
            write_bytes_atomic(stage / name, txt.encode())
    return [out / name for name in files]
