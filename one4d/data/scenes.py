"""Procedural 4D scenes: a moving camera in a textured room with moving objects, rendered analytically.

Every seed gives one deterministic scene (``np.random.default_rng(seed)``): a closed box room (floor, ceiling,
four walls with checkered / striped / mottled / shaded / plain textures in random colors), one to five
objects (spheres, boxes upright or tilted, upright or tilted cylinders, textured) that stay still, slide,
circle or bounce and may spin, a directional light from above plus ambient (Lambert, objects cast shadows),
a horizontal field of view of 45-75 degrees and a camera path (static, dolly, orbit, pan, handheld; any of
them may shake). Scene content does not depend on the frame count or resolution: motion is a function of
normalized clip time, and a larger render shows the same scene.

Conventions (see docs/data.md and the architecture's "Data conventions"):

* World = camera of frame 0, OpenCV axes (x right, y down, z forward); ``c2w[0]`` is exactly the identity.
* ``K`` [F, 3, 3] in pixels; **pixel centers at integer coordinates**: pixel (row v, column u) is the image
  point ``(u, v)``, with u = column index and v = row index (no +0.5). The principal point is the image
  center ``((W - 1) / 2, (H - 1) / 2)``.
* ``depth`` is the z-depth in the frame's own camera. ``points[i, v, u] = (c2w[i] @ [depth[i, v, u] *
  inv(K[i]) @ [u, v, 1], 1])[:3]`` holds to float32 rounding.
* ``valid`` marks pixels whose ray hit a surface; in a closed room that is every pixel.
* Units are arbitrary "metres": rooms are 4.5-8 wide, 6-10 long, 2.6-3.8 high; depth stays within ~0.6-10.2.

Seeds: :data:`TRAIN_SEEDS` for training, :data:`HELDOUT_SEEDS` (``>= 1_000_000``) only for evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..errors import One4DInputError
from .camera_paths import CAMERA_PATH_KINDS, CameraPath, intrinsics
from .captions import caption as make_caption
from .motion import MOTION_KINDS, Trajectory, random_rotation
from .render import Light, SceneObject, cast
from .shapes import Room, Shape
from .textures import random_texture

TRAIN_SEEDS = range(0, 100_000)
"""Seeds that training scripts may use."""

HELDOUT_SEEDS = range(1_000_000, 1_010_000)
"""Seeds reserved for evaluation: never used in training (every seed >= 1_000_000 counts as held out)."""

HELDOUT_START = 1_000_000

CAMERA_MARGIN = 0.6  # minimal distance from the camera to walls, floor and ceiling
OBJECT_CLEARANCE = 0.75  # minimal gap between the camera and an object's bounding sphere
_CHECK_TIMES = np.linspace(0.0, 1.0, 33)  # resolution-independent time grid for placement checks


@dataclass
class Scene4D:
    rgb: np.ndarray  # [F, H, W, 3] float32 in [0, 1]
    depth: np.ndarray  # [F, H, W] float32 z-depth in the frame's camera
    points: np.ndarray  # [F, H, W, 3] float32 XYZ in the frame-0 camera (OpenCV axes)
    valid: np.ndarray  # [F, H, W] bool
    K: np.ndarray  # [F, 3, 3] float32, pixels
    c2w: np.ndarray  # [F, 4, 4] float32 camera-to-world (world = frame-0 camera), c2w[0] = identity
    seed: int
    caption: str  # short text description of the scene
    info: dict = field(default_factory=dict)  # scene parameters: camera_path, fov_deg, objects, ...
    surface: np.ndarray | None = None  # [F, H, W] int16: 0-5 room faces, 6 + k object k, -1 no hit


@dataclass
class SceneSpec:
    """Everything a seed decides, before rendering at a given frame count and size."""

    seed: int
    room: Room
    objects: list[SceneObject]
    light: Light
    camera: CameraPath
    fov_deg: float

    @property
    def caption(self) -> str:
        return make_caption(self.objects, self.room, self.camera)

    def info(self) -> dict:
        return {
            "camera_path": self.camera.kind,
            "camera_jitter": bool(self.camera.jitter),
            "fov_deg": float(self.fov_deg),
            "num_objects": len(self.objects),
            "objects": [
                {
                    "kind": o.shape.kind,
                    "motion": o.trajectory.kind,
                    "texture": o.shape.texture.kind,
                    "resting": o.resting,
                    "spin": float(o.trajectory.spin),
                }
                for o in self.objects
            ],
            "room_size": (self.room.hi - self.room.lo).tolist(),
            "floor_texture": self.room.textures[3].kind,
            "wall_textures": [self.room.textures[i].kind for i in (0, 1, 4, 5)],
            "light_direction": self.light.direction.tolist(),
            "ambient": float(self.light.ambient),
        }


def check_size(frames: int, height: int, width: int) -> None:
    """Raise :class:`One4DInputError` unless frames = 4k + 1 and height, width are positive multiples of 16."""
    for name, value, example in (("frames", frames, 17), ("height", height, 64), ("width", width, 64)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise One4DInputError(f"{name} must be an integer, got {value!r}; pass e.g. {name}={example}")
    if frames < 1 or (frames - 1) % 4 != 0:
        lower = max(1, (frames - 1) // 4 * 4 + 1)
        raise One4DInputError(
            f"frames must be 4k + 1 (1, 5, 9, 13, 17, ...) for the Wan VAE, got {frames}; "
            f"use frames={lower} or frames={lower + 4}"
        )
    for name, value in (("height", height), ("width", width)):
        if value < 16 or value % 16 != 0:
            lower = max(16, value // 16 * 16)
            raise One4DInputError(
                f"{name} must be a positive multiple of 16 (VAE stride 8 x patch 2), got {value}; "
                f"use {name}={lower} or {name}={lower + 16}"
            )


def check_training_seeds(seeds: Sequence[int]) -> None:
    """Raise :class:`One4DInputError` if any seed is reserved for evaluation (>= 1_000_000)."""
    bad = [int(s) for s in seeds if int(s) >= HELDOUT_START]
    if bad:
        raise One4DInputError(
            f"training seeds must be below {HELDOUT_START} (held-out seeds are reserved for evaluation), "
            f"got {bad[:5]}{' ...' if len(bad) > 5 else ''}; draw training seeds from TRAIN_SEEDS"
        )


def sample_scene(seed: int) -> SceneSpec:
    """Draw all scene parameters for ``seed`` (deterministic; independent of frame count and resolution)."""
    rng = np.random.default_rng(int(seed))
    room = _sample_room(rng)
    fov = float(rng.uniform(45.0, 75.0))
    camera = _sample_camera(rng, room)
    light = Light(
        direction=_unit(np.array([rng.uniform(-1, 1), -rng.uniform(0.6, 1.6), rng.uniform(-1, 1)])),
        ambient=float(rng.uniform(0.25, 0.5)),
    )
    cam_pos = camera.poses(_CHECK_TIMES)[:, :3, 3]
    n_objects = int(rng.integers(1, 6))
    motions = [str(m) for m in rng.choice(MOTION_KINDS, size=n_objects, p=[0.15, 0.35, 0.25, 0.25])]
    if all(m == "static" for m in motions):
        motions[0] = "linear"
    objects = []
    for motion in motions:
        obj = None
        for _ in range(12):
            obj = _sample_object(rng, room, camera, fov, motion)
            if _clear_of_camera(obj, cam_pos):
                break
            obj = None
        if obj is not None:
            objects.append(obj)
    if not any(o.trajectory.moves for o in objects):  # placement failed for every moving object: retry harder
        for _ in range(100):
            obj = _sample_object(rng, room, camera, fov, "linear")
            if _clear_of_camera(obj, cam_pos):
                objects.append(obj)
                break
    return SceneSpec(seed=int(seed), room=room, objects=objects, light=light, camera=camera, fov_deg=fov)


def render_scene(seed: int, frames: int = 17, height: int = 64, width: int = 64) -> Scene4D:
    """Render the scene of ``seed`` as ``frames`` frames of ``height`` x ``width`` pixels."""
    check_size(frames, height, width)
    spec = sample_scene(seed)
    times = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    c2r = spec.camera.poses(times)
    c2w = (np.linalg.inv(c2r[0])[None] @ c2r).astype(np.float32)
    c2w[0] = np.eye(4, dtype=np.float32)
    c2w[:, 3, :] = np.array([0, 0, 0, 1], dtype=np.float32)
    K = np.repeat(intrinsics(spec.fov_deg, height, width)[None].astype(np.float32), frames, axis=0)
    out = cast(spec.room, spec.objects, spec.light, spec.camera, times, K, c2w, height, width)
    return Scene4D(K=K, c2w=c2w, seed=int(seed), caption=spec.caption, info=spec.info(), **out)


def render_dataset(
    seeds: Sequence[int], frames: int = 17, height: int = 64, width: int = 64
) -> dict[str, np.ndarray]:
    """Render and stack many scenes: ``rgb`` [B, F, H, W, 3], ``points``, ``depth``, ``valid``, ``K``, ``c2w``,
    ``surface`` (per-pixel surface ids), ``seeds`` [B] and ``captions`` (a list of B strings)."""
    check_size(frames, height, width)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise One4DInputError("seeds is empty; pass at least one seed, e.g. seeds=range(8)")
    scenes = [render_scene(s, frames, height, width) for s in seeds]
    keys = ("rgb", "points", "depth", "valid", "K", "c2w", "surface")
    out = {key: np.stack([getattr(sc, key) for sc in scenes]) for key in keys}
    out["seeds"] = np.array(seeds, dtype=np.int64)
    out["captions"] = [sc.caption for sc in scenes]
    return out


# ---------------------------------------------------------------------------------------------- sampling


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _sample_room(rng: np.random.Generator) -> Room:
    width, length, height = rng.uniform(4.5, 8.0), rng.uniform(6.0, 10.0), rng.uniform(2.6, 3.8)
    lo = np.array([-width / 2, -height, -length / 2])
    hi = np.array([width / 2, 0.0, length / 2])
    muted = dict(saturation=(0.1, 0.7), value=(0.45, 0.95))
    floor = random_texture(rng, probs=(0.05, 0.4, 0.2, 0.25, 0.1), scale=(0.3, 0.9), **muted)
    ceiling = random_texture(rng, kinds=("solid", "noise", "gradient"), probs=(0.4, 0.4, 0.2),
                             saturation=(0.0, 0.3), value=(0.7, 1.0), scale=(0.6, 1.5))
    if rng.uniform() < 0.6:
        walls = [random_texture(rng, probs=(0.1, 0.25, 0.3, 0.2, 0.15), scale=(0.3, 1.0), **muted)] * 4
    else:
        walls = [random_texture(rng, probs=(0.1, 0.25, 0.3, 0.2, 0.15), scale=(0.3, 1.0), **muted)
                 for _ in range(4)]
    # face order: left wall, right wall, ceiling, floor, back wall, front wall
    return Room(lo=lo, hi=hi, textures=[walls[0], walls[1], ceiling, floor, walls[2], walls[3]])


def _sample_camera(rng: np.random.Generator, room: Room) -> CameraPath:
    size = room.hi - room.lo
    eye = rng.uniform(1.0, min(1.8, size[1] - 0.8))
    position = np.array([
        rng.uniform(-0.25, 0.25) * size[0],
        -eye,
        room.lo[2] + rng.uniform(0.9, 0.3 * size[2]),
    ])
    kind = str(rng.choice(CAMERA_PATH_KINDS, p=[0.15, 0.25, 0.25, 0.2, 0.15]))
    yaw = float(np.deg2rad(rng.uniform(-30, 30)))
    pitch = float(np.deg2rad(rng.uniform(-5, 18)))
    path = CameraPath(kind=kind, position=position, yaw=yaw, pitch=pitch)
    heading = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    if kind == "dolly":
        name = str(rng.choice(["forward", "backward", "left", "right"], p=[0.4, 0.2, 0.2, 0.2]))
        path.direction = {"forward": heading, "backward": -heading, "left": -right, "right": right}[name]
        path.direction_name = name
        path.distance = float(rng.uniform(0.6, 2.0))
        path.ease = bool(rng.uniform() < 0.5)
    elif kind == "orbit":
        path.target = position + heading * rng.uniform(2.5, 4.5)
        path.target[1] = -rng.uniform(0.4, 1.2)
        path.sweep = float(np.deg2rad(rng.uniform(20, 60)) * rng.choice([-1, 1]))
    elif kind == "pan":
        path.pan_yaw = float(np.deg2rad(rng.uniform(15, 45)) * rng.choice([-1, 1]))
        path.pan_pitch = float(np.deg2rad(rng.uniform(-8, 8)))
    elif kind == "handheld":
        path.drift = np.array([rng.uniform(-0.3, 0.3), rng.uniform(-0.1, 0.1), rng.uniform(-0.3, 0.3)])
    path.jitter = kind == "handheld" or bool(rng.uniform() < 0.2)
    if path.jitter:
        path.jitter_pos = float(rng.uniform(0.02, 0.07))
        path.jitter_rot = float(np.deg2rad(rng.uniform(0.7, 2.5)))
        path.jitter_freq = rng.uniform(0.5, 3.0, size=(6, 3))
        path.jitter_phase = rng.uniform(0, 2 * np.pi, size=(6, 3))
    # keep the whole path inside the room: shrink the motion until it fits
    for _ in range(6):
        if room.contains(path.poses(_CHECK_TIMES)[:, :3, 3], CAMERA_MARGIN).all():
            break
        path.scale *= 0.5
    else:
        path.scale = 0.0
    return path


def _sample_object(rng, room: Room, camera: CameraPath, fov: float, motion: str) -> SceneObject:
    kind = str(rng.choice(["sphere", "box", "cylinder"], p=[0.4, 0.4, 0.2]))
    if kind == "sphere":
        half = np.full(3, rng.uniform(0.2, 0.6))
    elif kind == "box":
        half = rng.uniform(0.15, 0.55, size=3)
    else:
        r = rng.uniform(0.15, 0.45)
        half = np.array([r, rng.uniform(0.2, 0.7), r])
    texture = random_texture(rng, probs=(0.4, 0.2, 0.2, 0.1, 0.1), saturation=(0.5, 1.0), value=(0.55, 1.0),
                             scale=(0.12, 0.4))
    shape = Shape(kind=kind, half=half, texture=texture)
    resting = motion == "bouncing" or rng.uniform() < 0.6
    tilt = np.eye(3) if resting or kind == "sphere" else random_rotation(rng)
    radius = shape.bounding_radius
    if resting:  # upright, spinning about y: the horizontal reach is the footprint's half diagonal
        extent = np.array([np.hypot(half[0], half[2]), half[1], np.hypot(half[0], half[2])])
    else:
        extent = np.full(3, radius)
    lo, hi = room.lo + extent + 0.02, room.hi - extent - 0.02

    # start somewhere in the frame-0 view, 1.5-4.5 units ahead
    yaw = camera.yaw
    heading = np.array([np.sin(yaw), 0.0, np.cos(yaw)])
    right = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
    ahead = rng.uniform(1.5, 4.5)
    side = ahead * np.tan(np.deg2rad(fov) / 2) * rng.uniform(-0.75, 0.75)
    start = camera.position + heading * ahead + right * side
    room_height = room.hi[1] - room.lo[1]
    start[1] = -half[1] if resting else -rng.uniform(0.3 + radius, max(0.3 + radius, room_height - 0.3 - radius))
    start = np.clip(start, lo, hi)

    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), 0.0, np.sin(angle)])
    traj = Trajectory(kind=motion, start=start, end=start.copy(), lo=lo, hi=hi, tilt=tilt,
                      yaw0=float(rng.uniform(0, 2 * np.pi)))
    if motion == "linear":
        traj.end = start + direction * rng.uniform(0.6, 2.0)
        if not resting:
            traj.end[1] += rng.uniform(-0.5, 0.5)
    elif motion == "circular":
        traj.radius = float(rng.uniform(0.3, 1.2))
        traj.angle0 = float(angle)
        traj.sweep = float(rng.uniform(np.pi / 2, 2 * np.pi) * rng.choice([-1, 1]))
    elif motion == "bouncing":
        traj.end = start + direction * rng.uniform(0.0, 1.5)
        traj.height = float(min(rng.uniform(0.3, 1.0), room_height - 2 * half[1] - 0.3))
        traj.bounces = int(rng.integers(1, 4))
    if rng.uniform() < 0.6:
        traj.spin = float(rng.uniform(-np.pi, np.pi))
    return SceneObject(shape=shape, trajectory=traj, resting=resting)


def _clear_of_camera(obj: SceneObject, cam_pos: np.ndarray) -> bool:
    centers = obj.trajectory.centers(_CHECK_TIMES)
    gap = np.linalg.norm(centers - cam_pos, axis=1).min() - obj.shape.bounding_radius
    return bool(gap >= OBJECT_CLEARANCE)
