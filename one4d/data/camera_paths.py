"""Pinhole intrinsics and camera paths (static, dolly, orbit, pan, handheld) in the room frame.

Camera rotations use OpenCV axes: columns of the camera-to-room rotation are the camera's x (right), y (down)
and z (forward) axes. The room frame is y-down too, so an unrolled camera has its y axis along room +y.
Paths are functions of normalized time ``t`` in [0, 1] (0 = first frame, 1 = last).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CAMERA_PATH_KINDS = ("static", "dolly", "orbit", "pan", "handheld")


def intrinsics(fov_x_deg: float, height: int, width: int) -> np.ndarray:
    """K [3, 3] (float64) for a horizontal field of view; square pixels, principal point at the image center.

    Pixel centers sit at integer coordinates (OpenCV): the image spans ``u`` in [-0.5, W - 0.5], so the
    center is ``cx = (W - 1) / 2`` and ``fx = (W / 2) / tan(fov_x / 2)``.
    """
    f = (width / 2.0) / np.tan(np.deg2rad(fov_x_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def forward_from_angles(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Unit view directions [T, 3]: yaw > 0 turns right (+x), pitch > 0 looks down (+y, the room is y-down)."""
    return np.stack([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)], axis=-1)


def look_rotation(forward: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Camera-to-room rotations [T, 3, 3] looking along ``forward`` [T, 3], rolled by ``roll`` [T] radians."""
    z = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    down = np.array([0.0, 1.0, 0.0])
    x = np.cross(down[None, :], z)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    y = np.cross(z, x)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    x, y = c * x + s * y, -s * x + c * y
    return np.stack([x, y, z], axis=-1)


@dataclass
class CameraPath:
    """A parametric camera path. ``scale`` in [0, 1] shrinks the motion (used to keep it inside the room).

    * ``static``: fixed pose.
    * ``dolly``: translates by ``distance`` along ``direction`` (forward, backward, left or right; optional
      ease in/out), view direction fixed.
    * ``orbit``: circles ``sweep`` radians about a vertical axis through ``target``, always looking at it.
    * ``pan``: fixed position, yaw and pitch turn by ``pan_yaw`` and ``pan_pitch``.
    * ``handheld``: slow drift by ``drift`` plus shake.
    Any kind may add shake (``jitter``): smooth sums of sinusoids on position and angles.
    """

    kind: str
    position: np.ndarray  # start position, room frame
    yaw: float
    pitch: float
    direction: np.ndarray = field(default_factory=lambda: np.zeros(3))
    direction_name: str = ""
    distance: float = 0.0
    ease: bool = False
    target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    sweep: float = 0.0
    pan_yaw: float = 0.0
    pan_pitch: float = 0.0
    drift: np.ndarray = field(default_factory=lambda: np.zeros(3))
    jitter: bool = False
    jitter_pos: float = 0.0  # amplitude, scene units
    jitter_rot: float = 0.0  # amplitude, radians
    jitter_freq: np.ndarray = field(default_factory=lambda: np.zeros((6, 3)))  # cycles per clip
    jitter_phase: np.ndarray = field(default_factory=lambda: np.zeros((6, 3)))
    scale: float = 1.0

    def poses(self, t: np.ndarray) -> np.ndarray:
        """Camera-to-room matrices [T, 4, 4] (float64) at times [T]."""
        t = np.asarray(t, dtype=np.float64)
        n = len(t)
        pos = np.repeat(self.position[None, :], n, axis=0)
        yaw = np.full(n, self.yaw)
        pitch = np.full(n, self.pitch)
        roll = np.zeros(n)
        forward = None
        k = self.scale
        if self.kind == "dolly":
            s = t * t * (3.0 - 2.0 * t) if self.ease else t
            pos = pos + self.direction[None, :] * (self.distance * k * s)[:, None]
        elif self.kind == "orbit":
            a = self.sweep * k * t
            off = self.position - self.target
            c, s = np.cos(a), np.sin(a)
            pos = self.target[None, :] + np.stack(
                [c * off[0] + s * off[2], np.full(n, off[1]), -s * off[0] + c * off[2]], axis=1
            )
            forward = self.target[None, :] - pos
        elif self.kind == "pan":
            yaw = yaw + self.pan_yaw * k * t
            pitch = pitch + self.pan_pitch * k * t
        elif self.kind == "handheld":
            pos = pos + self.drift[None, :] * (k * t)[:, None]
        elif self.kind != "static":
            raise ValueError(f"unknown camera path kind {self.kind!r}")
        if forward is None:
            forward = forward_from_angles(yaw, pitch)
        if self.jitter:
            wave = np.sin(2 * np.pi * self.jitter_freq[None] * t[:, None, None] + self.jitter_phase[None])
            wave = wave.mean(axis=2)  # [T, 6], each a smooth curve in [-1, 1]
            pos = pos + self.jitter_pos * k * wave[:, :3]
            yaw_j, pitch_j = self.jitter_rot * k * wave[:, 3], self.jitter_rot * k * wave[:, 4]
            forward = _turn(forward, yaw_j, pitch_j)
            roll = roll + self.jitter_rot * k * wave[:, 5]
        out = np.tile(np.eye(4), (n, 1, 1))
        out[:, :3, :3] = look_rotation(forward, roll)
        out[:, :3, 3] = pos
        return out

    def describe(self) -> str:
        """A short phrase for captions, e.g. 'the camera orbits left'."""
        if self.kind == "static":
            return "a static camera"
        if self.kind == "handheld":
            return "a handheld camera"
        shake = " with a shaky hand" if self.jitter else ""
        if self.kind == "dolly":
            words = {
                "forward": "the camera moves forward",
                "backward": "the camera pulls back",
                "left": "the camera trucks left",
                "right": "the camera trucks right",
            }
            return words[self.direction_name] + shake
        if self.kind == "orbit":
            ends = self.poses(np.array([0.0, 1.0]))
            rightward = float((ends[1, :3, 3] - ends[0, :3, 3]) @ ends[0, :3, 0])
            return f"the camera orbits {'right' if rightward > 0 else 'left'}" + shake
        return f"the camera pans {'right' if self.pan_yaw > 0 else 'left'}" + shake


def _turn(forward: np.ndarray, dyaw: np.ndarray, dpitch: np.ndarray) -> np.ndarray:
    """Add yaw/pitch offsets [T] to view directions [T, 3]."""
    f = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    yaw = np.arctan2(f[:, 0], f[:, 2]) + dyaw
    pitch = np.arcsin(np.clip(f[:, 1], -1.0, 1.0)) + dpitch
    return forward_from_angles(yaw, pitch)
