"""Procedural 2D textures and random colors for the synthetic scenes.

A texture maps surface coordinates ``(s, t)`` in scene units (metres, say) to an albedo in [0, 1]. Room planes
use their two in-plane coordinates; objects use coordinates in their own (moving, spinning) frame, so the
pattern travels with the object and makes its motion visible.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

TEXTURE_KINDS = ("solid", "checker", "stripes", "noise", "gradient")

# Adjectives used by the caption generator ("a striped red box").
TEXTURE_ADJECTIVES = {
    "solid": "",
    "checker": "checkered",
    "stripes": "striped",
    "noise": "mottled",
    "gradient": "shaded",
}

_HUE_NAMES = (  # (upper hue bound, name); hue in [0, 1)
    (0.04, "red"),
    (0.11, "orange"),
    (0.18, "yellow"),
    (0.45, "green"),
    (0.54, "cyan"),
    (0.72, "blue"),
    (0.84, "purple"),
    (0.94, "pink"),
    (1.01, "red"),
)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB color (float64 [3]) from hue, saturation, value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float64)


def color_name(rgb: np.ndarray) -> str:
    """A plain English name for an RGB color: 'white', 'gray', 'black' or a hue name."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) for c in rgb))
    if v < 0.25:
        return "black"
    if s < 0.2:
        return "white" if v > 0.75 else "gray"
    for bound, name in _HUE_NAMES:
        if h < bound:
            return name
    return "red"  # unreachable: the last bound is above 1


@dataclass
class Texture:
    """A procedural texture. ``color_a`` is the dominant color (used for the color's name)."""

    kind: str
    color_a: np.ndarray
    color_b: np.ndarray
    scale: float = 1.0  # pattern period in scene units
    angle: float = 0.0  # stripe / gradient direction, radians
    lattice: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))  # noise values, [n, n] in [0, 1]

    @property
    def adjective(self) -> str:
        return TEXTURE_ADJECTIVES[self.kind]

    def __call__(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Albedo [M, 3] (float64) at surface coordinates ``s``, ``t`` (each [M])."""
        w = self.weight(s, t)[:, None]
        a, b = self.color_a.astype(s.dtype), self.color_b.astype(s.dtype)
        return a[None, :] + (b - a)[None, :] * w

    def weight(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Blend weight [M] in [0, 1] between ``color_a`` (0) and ``color_b`` (1)."""
        if self.kind == "solid":
            return np.zeros_like(s)
        if self.kind == "checker":
            cells = np.floor(s / self.scale) + np.floor(t / self.scale)
            return np.mod(cells, 2.0)
        along = (s * np.cos(self.angle) + t * np.sin(self.angle)) / self.scale
        if self.kind == "stripes":
            return (np.mod(along, 1.0) < 0.5).astype(np.float64)
        if self.kind == "gradient":  # triangle wave: smooth ramps, never constant over a large surface
            return np.abs(np.mod(along, 2.0) - 1.0)
        if self.kind == "noise":
            return _value_noise(self.lattice.astype(s.dtype), s / self.scale, t / self.scale)
        raise ValueError(f"unknown texture kind {self.kind!r}")


def _value_noise(lattice: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two octaves of smooth, tileable value noise on a random lattice, in [0, 1]."""
    out = np.zeros_like(x)
    total = 0.0
    for octave, amp in ((1.0, 0.65), (2.7, 0.35)):
        out += amp * _bilinear_lattice(lattice, x * octave + 3.1 * (octave - 1), y * octave)
        total += amp
    return out / total


def _bilinear_lattice(lattice: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = lattice.shape[0]
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = x - x0
    fy = y - y0
    fx = fx * fx * (3.0 - 2.0 * fx)  # smoothstep
    fy = fy * fy * (3.0 - 2.0 * fy)
    i0 = x0.astype(np.int64) % n
    j0 = y0.astype(np.int64) % n
    i1 = (i0 + 1) % n
    j1 = (j0 + 1) % n
    top = lattice[j0, i0] * (1 - fx) + lattice[j0, i1] * fx
    bottom = lattice[j1, i0] * (1 - fx) + lattice[j1, i1] * fx
    return top * (1 - fy) + bottom * fy


def random_texture(
    rng: np.random.Generator,
    kinds: tuple[str, ...] = TEXTURE_KINDS,
    probs: tuple[float, ...] | None = None,
    saturation=(0.45, 0.95),
    value=(0.5, 1.0),
    scale=(0.25, 0.8),
) -> Texture:
    """A random texture: pattern kind, two colors (the second a contrasting or shaded variant), scale, angle."""
    kind = str(rng.choice(kinds, p=probs))
    h, s, v = rng.uniform(), rng.uniform(*saturation), rng.uniform(*value)
    color_a = hsv(h, s, v)
    if rng.uniform() < 0.5:  # same hue, different shade
        color_b = hsv(h, s * rng.uniform(0.3, 1.0), v * rng.uniform(0.25, 0.6))
    else:  # a second, contrasting color
        color_b = hsv(h + rng.uniform(0.25, 0.75), rng.uniform(*saturation), rng.uniform(*value))
    return Texture(
        kind=kind,
        color_a=color_a,
        color_b=color_b,
        scale=float(rng.uniform(*scale)),
        angle=float(rng.uniform(0, np.pi)),
        lattice=rng.uniform(0.0, 1.0, size=(8, 8)),
    )
