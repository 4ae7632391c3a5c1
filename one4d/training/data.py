"""Training data of the embedded recipe: procedural clips rendered once, encoded once, drawn in batches.

``data.npz`` holds the rendered clips (RGB as uint8, pointmaps, validity, captions); ``latents.npz`` holds
their VAE latents: RGB, normalized pointmap, and the UMC conditioning videos (image; one sparse draw per
clip; text = the all-gray video; full video = the RGB latents themselves), so that training never runs
the VAE.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..backbone import LatentGeometry
from ..codec import VideoCodec
from ..data import render_dataset
from ..pointmap import fit_normalization, normalize
from ..text import pad_text
from ..umc import build_condition_video, build_mask
from . import recipe
from .tasks import default_task_mix, draw_sparse_indices, draw_task


def render_training_set(work: Path, clips: int) -> None:
    """Render procedural clips with the training seeds ``0 .. clips - 1`` into ``<work>/data.npz``."""
    ds = render_dataset(range(clips), frames=recipe.FRAMES, height=recipe.HEIGHT, width=recipe.WIDTH)
    np.savez(
        work / "data.npz",
        rgb=(ds["rgb"] * 255).round().astype(np.uint8),
        points=ds["points"].astype(np.float32),
        valid=ds["valid"],
        captions=np.array(ds["captions"]),
    )


def video_tensor(rgb_u8: np.ndarray) -> torch.Tensor:
    """``[N, F, H, W, 3]`` uint8 -> ``[N, 3, F, H, W]`` in [-1, 1]."""
    return torch.from_numpy(rgb_u8).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)


def normalized_pointmaps(data) -> np.ndarray:
    """Every clip's pointmap normalized by its own fit (:mod:`one4d.pointmap`)."""
    return np.stack([normalize(p, fit_normalization(p, v)) for p, v in zip(data["points"], data["valid"])])


def encode_batches(codec: VideoCodec, videos: torch.Tensor, batch: int = 8) -> torch.Tensor:
    """Normalized latents of many videos, a few at a time, stored as float16."""
    with torch.no_grad():
        return torch.cat([codec.encode(videos[i : i + batch]) for i in range(0, len(videos), batch)]).half()


def pad_indices(lists: list[list[int]], f: int) -> np.ndarray:
    """Index lists as rows of an ``[N, f]`` array padded with -1."""
    out = np.full((len(lists), f), -1, np.int64)
    for i, idx in enumerate(lists):
        out[i, : len(idx)] = idx
    return out


def encode_training_set(work: Path, codec: VideoCodec, text_encoder: Callable[[str], torch.Tensor], text_length: int) -> None:
    """Encode ``<work>/data.npz`` into ``<work>/latents.npz`` (module docstring), with the captions' text
    contexts and the codec's latent geometry."""
    data = np.load(work / "data.npz")
    n, f = data["rgb"].shape[:2]
    rgb = video_tensor(data["rgb"])
    xyz = torch.from_numpy(normalized_pointmaps(data)).permute(0, 4, 1, 2, 3)
    rng = np.random.default_rng(1)
    sparse = [draw_sparse_indices(rng, f) for _ in range(n)]
    frames01 = torch.from_numpy(data["rgb"]).float() / 255
    image_videos = torch.cat([build_condition_video(frames01[i, :1], [0], f) for i in range(n)])
    sparse_videos = torch.cat([build_condition_video(frames01[i, sparse[i]], sparse[i], f) for i in range(n)])
    gray = torch.zeros(1, 3, f, *data["rgb"].shape[2:4])
    out = {
        "rgb": encode_batches(codec, rgb),
        "xyz": encode_batches(codec, xyz),
        "cond_image": encode_batches(codec, image_videos),
        "cond_sparse": encode_batches(codec, sparse_videos),
        "cond_text": encode_batches(codec, gray),
    }
    out["context"] = torch.cat([pad_text(text_encoder(str(c)), text_length) for c in data["captions"]]).half()
    g = codec.geometry
    np.savez(work / "latents.npz", **{k: v.numpy() for k, v in out.items()}, sparse=pad_indices(sparse, f),
             geometry=np.array([g.channels, g.time_stride, g.space_stride, g.patch]))


class LatentBatches:
    """Training batches from the encoded set: clean latents, a UMC task draw per clip, and text contexts."""

    def __init__(self, work: Path, seed: int):
        lat = np.load(work / "latents.npz")
        self.lat = {k: torch.from_numpy(lat[k]).float() for k in lat.files if k not in ("sparse", "geometry", "context")}
        self.sparse = lat["sparse"]
        self.geometry = LatentGeometry(*(int(v) for v in lat["geometry"]))
        self.context = torch.from_numpy(lat["context"]).float()
        self.rng = np.random.default_rng(seed)
        self.mix = default_task_mix()
        self.frames = recipe.FRAMES

    def __len__(self) -> int:
        return len(self.context)

    def draw(self, batch: int, clips: np.ndarray | None = None):
        idx = clips if clips is not None else self.rng.integers(0, len(self), batch)
        tasks = [draw_task(self.rng, self.mix) for _ in idx]
        hw = self.lat["rgb"].shape[-2:]
        masks, conds = [], []
        for i, task in zip(idx, tasks):
            if task == "text":
                ind, cond = [], self.lat["cond_text"][0]
            elif task == "image":
                ind, cond = [0], self.lat["cond_image"][i]
            elif task == "video":
                ind, cond = list(range(self.frames)), self.lat["rgb"][i]
            else:
                ind = [int(j) for j in self.sparse[i] if j >= 0]
                cond = self.lat["cond_sparse"][i]
            masks.append(build_mask(ind, self.frames, tuple(hw), self.geometry))
            conds.append(cond[None])
        return (self.lat["rgb"][idx], self.lat["xyz"][idx], torch.cat(masks), torch.cat(conds), self.context[idx])
