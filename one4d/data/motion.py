"""Object trajectories: where an object's center is and how it is rotated at normalized time ``t`` in [0, 1].

Time is normalized over the clip (0 = first frame, 1 = last), so a scene looks the same whatever the frame
count; more frames only sample the same motion more finely.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MOTION_KINDS = ("static", "linear", "circular", "bouncing")

# Words the caption generator uses for each motion.
MOTION_WORDS = {"static": "resting", "linear": "sliding", "circular": "circling", "bouncing": "bouncing"}


def rot_y(angle: np.ndarray) -> np.ndarray:
    """Rotations about the room's y axis, [T, 3, 3] for angles [T] (radians)."""
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))[None, :]
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@dataclass
class Trajectory:
    """Center path and rotation of one object.

    * ``static``: stays at ``start``.
    * ``linear``: moves from ``start`` to ``end`` at constant speed.
    * ``circular``: ``start`` is the circle's center; horizontal circle of ``radius`` from ``angle0`` sweeping
      ``sweep`` radians.
    * ``bouncing``: slides from ``start`` to ``end`` on the floor while hopping ``bounces`` times up to
      ``height`` (``start``/``end`` are resting positions; y is down, so up is negative y).

    Centers are clipped to ``[lo, hi]`` (room bounds shrunk by the object's extent), so the object never
    enters a wall. The rotation is ``rot_y(yaw0 + spin * t) @ tilt``.
    """

    kind: str
    start: np.ndarray
    end: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    radius: float = 0.0
    angle0: float = 0.0
    sweep: float = 0.0
    height: float = 0.0
    bounces: int = 1
    yaw0: float = 0.0
    spin: float = 0.0
    tilt: np.ndarray = field(default_factory=lambda: np.eye(3))

    def centers(self, t: np.ndarray) -> np.ndarray:
        """Object centers [T, 3] at times [T]."""
        t = np.asarray(t, dtype=np.float64)[:, None]
        if self.kind == "static":
            c = np.repeat(self.start[None, :], len(t), axis=0)
        elif self.kind == "linear":
            c = self.start[None, :] * (1.0 - t) + self.end[None, :] * t
        elif self.kind == "circular":
            a = self.angle0 + self.sweep * t[:, 0]
            offset = np.stack([np.cos(a), np.zeros_like(a), np.sin(a)], axis=1) * self.radius
            c = self.start[None, :] + offset
        elif self.kind == "bouncing":
            c = self.start[None, :] * (1.0 - t) + self.end[None, :] * t
            c[:, 1] -= self.height * np.abs(np.sin(np.pi * self.bounces * t[:, 0]))
        else:
            raise ValueError(f"unknown motion kind {self.kind!r}")
        return np.clip(c, self.lo, self.hi)

    def rotations(self, t: np.ndarray) -> np.ndarray:
        """Object-to-room rotations [T, 3, 3] (columns are the local axes in the room frame)."""
        t = np.asarray(t, dtype=np.float64)
        return rot_y(self.yaw0 + self.spin * t) @ self.tilt[None]

    @property
    def moves(self) -> bool:
        return self.kind != "static"
