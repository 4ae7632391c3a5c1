"""The preview sheet of a 4D clip: input | RGB | depth | rendered point cloud, one row per sampled frame.

The point-cloud view is a z-buffered splat (numpy) from a camera orbited 25 degrees around the scene
center, so the geometry shows depth that the frame-0 view would hide.
"""
from __future__ import annotations

import cv2
import numpy as np


def colorize_depth(depth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """``[..., H, W]`` depth -> uint8 RGB with a turbo colormap over the 2-98 percentile range (near = red)."""
    ok = np.isfinite(depth) & (depth > 0) if valid is None else valid & np.isfinite(depth)
    lo, hi = (np.percentile(depth[ok], [2, 98]) if ok.any() else (0.0, 1.0))
    t = np.clip(np.where(ok, (depth - lo) / max(hi - lo, 1e-8), 0.0), 0, 1)  # non-finite depths are masked below
    flat = (255 * (1 - t)).astype(np.uint8).reshape(-1, 1)
    rgb = cv2.cvtColor(cv2.applyColorMap(flat, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB).reshape(*depth.shape, 3)
    rgb[~ok] = 0
    return rgb


def splat_points(points: np.ndarray, colors: np.ndarray, K: np.ndarray, w2c: np.ndarray, height: int, width: int) -> np.ndarray:
    """Z-buffered point splat (2x2 pixels) of ``[N, 3]`` points with ``[N, 3]`` uint8 colors into an image."""
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    keep = z > 1e-6
    uv = cam[keep, :2] / z[keep, None] @ K[:2, :2].T + K[:2, 2]
    u, v, z, col = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int), z[keep], colors[keep]
    img = np.full((height, width, 3), 24, np.uint8)
    zbuf = np.full((height, width), np.inf)
    order = np.argsort(-z)  # far first, near overwrite
    for du in (0, 1):
        for dv in (0, 1):
            uu, vv = u[order] + du, v[order] + dv
            ok = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
            uu, vv, zz, cc = uu[ok], vv[ok], z[order][ok], col[order][ok]
            closer = zz < zbuf[vv, uu]
            img[vv[closer], uu[closer]] = cc[closer]
            zbuf[vv[closer], uu[closer]] = zz[closer]
    return img


def orbit_view(points: np.ndarray, angle_deg: float = 25.0) -> np.ndarray:
    """A world-to-camera matrix orbiting the frame-0 camera around the scene's median point (about +y)."""
    center = np.median(points.reshape(-1, 3), axis=0)
    a = np.deg2rad(angle_deg)
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    eye = center + R @ (-center)  # rotate the frame-0 camera (at the origin) about the center
    fwd = center - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross([0.0, 1.0, 0.0], fwd)
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    Rwc = np.stack([right, down, fwd])
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = Rwc, -Rwc @ eye
    return w2c


def preview_sheet(inputs: np.ndarray, rgb: np.ndarray, depth: np.ndarray, valid: np.ndarray, points: np.ndarray,
                  K: np.ndarray, rows: int = 4, scale: int = 3) -> np.ndarray:
    """Rows of evenly spaced frames; columns: input (gray where unobserved), RGB, depth, point-cloud view."""
    f, h, w, _ = rgb.shape
    frames = np.linspace(0, f - 1, min(rows, f)).round().astype(int)
    colors = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    w2c = orbit_view(points[valid])
    dcol = colorize_depth(depth, valid)
    lines = []
    for i in frames:
        ok = valid[i]
        cloud = splat_points(points[i][ok], colors[i][ok], K[i], w2c, h, w)
        cells = [(np.clip(inputs[i], 0, 1) * 255).astype(np.uint8), colors[i], dcol[i], cloud]
        line = np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], axis=1)
        lines.append(line)
    sheet = np.concatenate(lines, axis=0)
    return cv2.resize(sheet, (sheet.shape[1] * scale, sheet.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
