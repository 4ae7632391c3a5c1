"""Stand-ins for the core ComfyUI nodes the example workflows use, so the API-format twins run in CI.

Each fake has the core node's inputs and outputs (ComfyUI 0.3.64) and returns what the One4D nodes
read: IMAGE batches from the sample assets, CONDITIONING in ComfyUI's format ``[[tensor [1, L, D], {}]]``
from the embedded model's hash text encoder (so it is as wide as the embedded backbone expects), a
CLIP_VISION_OUTPUT with ``penultimate_hidden_states``. Save/preview fakes write real files.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from nodes import comfy_bridge

ASSETS = Path(__file__).resolve().parents[1] / "one4d" / "assets"
IMAGES = {"frame_040.png": "sample_frame_08.png", "frame_080.png": "sample_frame_16.png"}


def _read_png(name: str) -> torch.Tensor:
    import cv2

    img = cv2.cvtColor(cv2.imread(str(ASSETS / IMAGES.get(name, "sample.png"))), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(img.astype(np.float32) / 255.0)[None]


class LoadImage:
    FUNCTION = "load"

    def load(self, image):
        img = _read_png(image)
        return img, torch.zeros(img.shape[:3])


class LoadVideo:
    FUNCTION = "load"

    def load(self, file):
        return (str(ASSETS / "sample.mp4"),)


class GetVideoComponents:
    FUNCTION = "get"

    def get(self, video):
        from one4d.data.media import read_video

        frames = read_video(video, 128, 128, 17)
        return torch.from_numpy(frames), None, 8.0


class CLIPLoader:
    FUNCTION = "load"

    def load(self, clip_name, type, device="default"):  # noqa: A002
        from one4d.text import HashTextEncoder

        assert type == "wan"
        return (HashTextEncoder(64, 48),)


class CLIPTextEncode:
    FUNCTION = "encode"

    def encode(self, clip, text):
        return ([[clip(text)[:, : max(1, len(text.split()))], {}]],)


class CLIPVisionLoader:
    FUNCTION = "load"

    def load(self, clip_name):
        return (object(),)


class CLIPVisionEncode:
    FUNCTION = "encode"

    def encode(self, clip_vision, image, crop):
        return (SimpleNamespace(penultimate_hidden_states=torch.zeros(image.shape[0], 257, 1280)),)


class ImageBatch:
    FUNCTION = "batch"

    def batch(self, image1, image2):
        return (torch.cat([image1, image2]),)


class ImageFromBatch:
    FUNCTION = "frombatch"

    def frombatch(self, image, batch_index, length):
        return (image[batch_index:batch_index + length],)


class SaveAnimatedWEBP:
    FUNCTION = "save"

    def save(self, images, filename_prefix, fps, lossless, quality, method):
        from PIL import Image

        folder, name, counter, sub = comfy_bridge.get_save_image_path(filename_prefix, comfy_bridge.output_directory())
        Path(folder).mkdir(parents=True, exist_ok=True)
        frames = [Image.fromarray((f.numpy() * 255).astype(np.uint8)) for f in images]
        file = f"{name}_{counter:05}_.webp"
        frames[0].save(Path(folder) / file, save_all=True, append_images=frames[1:], duration=int(1000 / fps),
                       lossless=lossless, quality=quality)
        return {"ui": {"images": [{"filename": file, "subfolder": sub, "type": "output"}], "animated": (True,)}}


class PreviewImage:
    FUNCTION = "save"

    def save(self, images):
        assert images.ndim == 4 and images.shape[-1] == 3
        return {"ui": {"images": []}}


class ProgressBars:
    """Stands in for ``comfy.utils.ProgressBar`` (patch it over ``comfy_bridge.progress_bar``): keeps every bar
    made with its ``update_absolute`` calls; ``on_update(bar, value)`` runs after each (e.g. to press Cancel)."""

    def __init__(self, on_update=None):
        self.bars: list[FakeBar] = []
        self.on_update = on_update

    def __call__(self, total: int) -> "FakeBar":
        self.bars.append(FakeBar(total, self))
        return self.bars[-1]

    def filled(self) -> list[int]:
        """Totals of the bars that reached their end."""
        return [bar.total for bar in self.bars if bar.updates and bar.updates[-1][0] == bar.total]


class FakeBar:
    def __init__(self, total: int, owner: ProgressBars):
        self.total, self.owner, self.updates = total, owner, []

    def update_absolute(self, value, total=None, preview=None):
        self.updates.append((value, self.total if total is None else total))
        if self.owner.on_update is not None:
            self.owner.on_update(self, value)


CORE = {cls.__name__: cls for cls in (LoadImage, LoadVideo, GetVideoComponents, CLIPLoader, CLIPTextEncode,
                                      CLIPVisionLoader, CLIPVisionEncode, ImageBatch, ImageFromBatch,
                                      SaveAnimatedWEBP, PreviewImage)}


def embedded_version(prompt: dict, steps: int = 2, refine: int = 10) -> dict:
    """An API workflow made for a Wan backbone, pointed at the embedded model and its size (17 x 64 x 64)."""
    from nodes.cache import EMBEDDED

    out = small_version(prompt, steps, refine)
    for node in out.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "One4DLoadBackbone":
            inputs.update(dit_name=EMBEDDED, vae_name=EMBEDDED)
        elif kind == "One4DApplyPointmapLoRA":
            inputs["one4d_weights"] = EMBEDDED
    return out


def small_version(prompt: dict, steps: int = 2, refine: int = 10) -> dict:
    """An API workflow cut to 17 x 64 x 64 with the same model files: frame indices written for a longer clip
    are scaled to 17 frames (0,40,80 -> 0,8,16); steps and camera refinement are cut so the test stays fast."""
    out = json.loads(json.dumps(prompt))
    for node in out.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "One4DBuildConditioning":
            old = int(inputs["length"])
            spec = str(inputs["frame_indices"]).strip()
            if spec[:1].isdigit():
                spec = ",".join(str(round(int(i) * 16 / (old - 1))) for i in spec.split(","))
            inputs.update(width=64, height=64, length=17, frame_indices=spec)
        elif kind == "One4DSample":
            inputs["steps"] = steps
        elif kind == "One4DCameras":
            inputs["refine_iterations"] = refine
    return out
