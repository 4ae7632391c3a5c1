"""Render the sample inputs shipped in one4d/assets/ from a held-out procedural scene (never trained on)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from one4d.data import render_scene
from one4d.export.video import write_video

SEED = 1_000_013  # held-out: a sliding yellow box and a bouncing pink box, the camera orbits left
OUT = Path(__file__).resolve().parents[1] / "one4d" / "assets"


def main() -> None:
    scene = render_scene(SEED, frames=17, height=128, width=128)
    write_video(OUT / "sample.mp4", scene.rgb, fps=8)
    for i, name in ((0, "sample.png"), (8, "sample_frame_08.png"), (16, "sample_frame_16.png")):
        cv2.imwrite(str(OUT / name), cv2.cvtColor((scene.rgb[i] * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
    (OUT / "sample_caption.txt").write_text(scene.caption + "\n")


if __name__ == "__main__":
    main()
