"""Analytic ray intersection and surface frames for the room and the objects.

All functions are vectorized over rays. Objects are intersected in their own local frame (the renderer
transforms rays by the object's per-frame center and rotation); the room is an axis-aligned box seen from
inside, in the room frame (y down, floor at ``y = hi[1]``).

Ray directions need not be unit length: a hit parameter ``t`` means the point ``o + t * d``. The renderer uses
directions whose camera-frame z component is 1, so ``t`` is directly the z-depth.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .textures import Texture

EPS = 1e-6


@dataclass
class Shape:
    """A sphere, box or vertical (local y axis) capped cylinder, centered at its local origin.

    ``half`` holds the half extents along local x, y, z: ``(r, r, r)`` for a sphere, ``(hx, hy, hz)`` for a
    box, ``(r, h, r)`` for a cylinder of radius r and height 2h.
    """

    kind: str
    half: np.ndarray
    texture: Texture

    @property
    def bounding_radius(self) -> float:
        if self.kind == "sphere":
            return float(self.half[0])
        if self.kind == "cylinder":
            return float(np.hypot(self.half[0], self.half[1]))
        return float(np.linalg.norm(self.half))

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Nearest hit parameter for rays ``o + t d`` in the local frame; ``inf`` where missed.

        ``o`` broadcasts against ``d`` (e.g. ``[F, 1, 3]`` against ``[F, N, 3]``); the result drops the last axis.
        Rays starting inside the shape are reported as misses (the camera never is inside an object).
        """
        if self.kind == "sphere":
            return _sphere(o, d, float(self.half[0]))
        if self.kind == "box":
            return _box(o, d, self.half)
        if self.kind == "cylinder":
            return _cylinder(o, d, float(self.half[0]), float(self.half[1]))
        raise ValueError(f"unknown shape kind {self.kind!r}")

    def surface(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Outward unit normal [M, 3] and texture coordinates ``s``, ``t`` [M] at local surface points [M, 3]."""
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        if self.kind == "sphere":
            r = float(self.half[0])
            n = p / np.linalg.norm(p, axis=1, keepdims=True)
            lon = np.arctan2(x, z)
            lat = np.arcsin(np.clip(n[:, 1], -1.0, 1.0))
            return n, lon * r, lat * r
        if self.kind == "box":
            rel = np.abs(p) / self.half[None, :].astype(p.dtype)
            axis = np.argmax(rel, axis=1)
            n = np.zeros_like(p)
            rows = np.arange(len(p))
            n[rows, axis] = np.sign(p[rows, axis])
            # in-plane coordinates: the two axes other than the face normal
            s = np.where(axis == 0, z, x)
            t = np.where(axis == 1, z, y)
            return n, s, t
        if self.kind == "cylinder":
            r, h = float(self.half[0]), float(self.half[1])
            radial = np.hypot(x, z)
            cap = np.abs(y) > h * (1.0 - 1e-6)  # side hits satisfy |y| <= h, cap hits |y| = h
            n = np.stack([x / np.maximum(radial, EPS), np.zeros_like(y), z / np.maximum(radial, EPS)], axis=1)
            n[cap] = 0.0
            n[cap, 1] = np.sign(y[cap])
            s = np.where(cap, x, np.arctan2(x, z) * r)
            t = np.where(cap, z, y)
            return n, s, t
        raise ValueError(f"unknown shape kind {self.kind!r}")


def _sphere(o: np.ndarray, d: np.ndarray, r: float) -> np.ndarray:
    a = np.einsum("...k,...k->...", d, d)
    b = np.einsum("...k,...k->...", d, o)
    c = np.einsum("...k,...k->...", o, o) - r * r
    disc = b * b - a * c
    hit = disc > 0
    t = (-b - np.sqrt(np.where(hit, disc, 0.0))) / a
    return np.where(hit & (t > EPS) & (c > 0), t, np.inf)


def _box(o: np.ndarray, d: np.ndarray, half: np.ndarray) -> np.ndarray:
    # slab test, one axis at a time (reductions over a length-3 last axis are slow in numpy)
    tnear = tfar = None
    for k in range(3):
        dk = d[..., k]
        inv = 1.0 / np.where(np.abs(dk) < 1e-12, 1e-12, dk)
        hk = float(half[k])
        t1 = (-hk - o[..., k]) * inv
        t2 = (hk - o[..., k]) * inv
        lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
        tnear = lo if tnear is None else np.maximum(tnear, lo)
        tfar = hi if tfar is None else np.minimum(tfar, hi)
    return np.where((tnear <= tfar) & (tnear > EPS), tnear, np.inf)


def _cylinder(o: np.ndarray, d: np.ndarray, r: float, h: float) -> np.ndarray:
    ox, oy, oz = o[..., 0], o[..., 1], o[..., 2]
    dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
    # side
    a = dx * dx + dz * dz
    b = dx * ox + dz * oz
    c = ox * ox + oz * oz - r * r
    disc = b * b - a * c
    ok = (disc > 0) & (a > 1e-12)
    t_side = (-b - np.sqrt(np.where(ok, disc, 0.0))) / np.where(a > 1e-12, a, 1.0)
    y_side = oy + t_side * dy
    t_side = np.where(ok & (t_side > EPS) & (np.abs(y_side) <= h), t_side, np.inf)
    # caps: the one facing the ray origin
    dy_safe = np.where(np.abs(dy) < 1e-12, 1e-12, dy)
    cap_y = np.where(oy < 0, -h, h)
    t_cap = (cap_y - oy) / dy_safe
    cx = ox + t_cap * dx
    cz = oz + t_cap * dz
    t_cap = np.where((t_cap > EPS) & (cx * cx + cz * cz <= r * r) & (np.abs(oy) > h), t_cap, np.inf)
    return np.minimum(t_side, t_cap)


# Room faces, in order: the face index is 2 * axis + (1 if the ray leaves through the high side).
ROOM_FACES = ("left wall", "right wall", "ceiling", "floor", "back wall", "front wall")


@dataclass
class Room:
    """An axis-aligned box ``[lo, hi]`` (room frame, y down: ceiling at lo[1], floor at hi[1]).

    ``textures`` has one texture per face in :data:`ROOM_FACES` order (walls may share one object).
    """

    lo: np.ndarray
    hi: np.ndarray
    textures: list[Texture]

    def intersect(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exit parameter ``t`` and face index for rays starting inside the room."""
        t = face = None
        for k in range(3):
            dk = d[..., k]
            dk = np.where(np.abs(dk) < 1e-12, 1e-12, dk)
            high = dk > 0
            tk = (np.where(high, dk.dtype.type(self.hi[k]), dk.dtype.type(self.lo[k])) - o[..., k]) / dk
            fk = 2 * k + high.astype(np.int64)
            if t is None:
                t, face = tk, fk
            else:
                closer = tk < t
                t = np.where(closer, tk, t)
                face = np.where(closer, fk, face)
        return t, face

    def surface(self, face: int, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inward unit normal [M, 3] and in-plane texture coordinates at points [M, 3] on one face."""
        axis, high = divmod(face, 2)
        n = np.zeros_like(p)
        n[:, axis] = -1.0 if high else 1.0
        if axis == 1:  # floor and ceiling: (x, z)
            return n, p[:, 0], p[:, 2]
        # walls: the horizontal in-plane coordinate (z on the side walls, x on the end walls), then height
        return n, p[:, 2 if axis == 0 else 0], p[:, 1]

    def contains(self, p: np.ndarray, margin: float = 0.0) -> np.ndarray:
        return np.all((p >= self.lo + margin) & (p <= self.hi - margin), axis=-1)
