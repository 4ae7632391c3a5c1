"""A quick look at a scene: a PNG strip with RGB frames on top and colormapped depth below.

Usage: ``python -m one4d.data.preview SEED OUT.png [--frames 17 --size 64 --every 4]``.
"""
from __future__ import annotations

import argparse

import numpy as np

from .scenes import Scene4D, render_scene


def depth_colormap(depth: np.ndarray, near: float | None = None, far: float | None = None) -> np.ndarray:
    """uint8 RGB [..., 3] of depth (near = warm, far = cool) using OpenCV's turbo map."""
    import cv2

    near = float(depth.min()) if near is None else near
    far = float(depth.max()) if far is None else far
    x = np.clip((depth - near) / max(far - near, 1e-6), 0.0, 1.0)
    gray = np.round(255 * (1.0 - x)).astype(np.uint8)
    flat = cv2.applyColorMap(gray.reshape(-1, 1), cv2.COLORMAP_TURBO)  # BGR
    return flat.reshape(depth.shape + (3,))[..., ::-1]


def scene_strip(scene: Scene4D, every: int = 4, upscale: int = 2) -> np.ndarray:
    """uint8 RGB image [2 * H * upscale, n * W * upscale, 3]: frames 0, every, 2 * every, ... (RGB over depth)."""
    idx = list(range(0, scene.rgb.shape[0], every))
    rgb = np.concatenate([scene.rgb[i] for i in idx], axis=1)
    depth = np.concatenate([scene.depth[i] for i in idx], axis=1)
    top = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    img = np.concatenate([top, depth_colormap(depth)], axis=0)
    return np.repeat(np.repeat(img, upscale, axis=0), upscale, axis=1)


def save_strip(scene: Scene4D, path: str, every: int = 4, upscale: int = 2) -> None:
    import cv2

    if not cv2.imwrite(str(path), scene_strip(scene, every, upscale)[..., ::-1]):
        raise OSError(f"could not write {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render one synthetic scene to a PNG strip (RGB over depth).")
    parser.add_argument("seed", type=int)
    parser.add_argument("out")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--every", type=int, default=4)
    args = parser.parse_args(argv)
    scene = render_scene(args.seed, args.frames, args.size, args.size)
    save_strip(scene, args.out, args.every)
    print(scene.caption)


if __name__ == "__main__":
    main()
