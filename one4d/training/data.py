"""Training data: procedural clips rendered once (``data.npz``: RGB as uint8, pointmaps, validity, captions),
encoded once into the latent cache (:mod:`one4d.training.cache`), and drawn in batches with a UMC task per
clip (image, sparse, text, or the full video, whose conditioning latents are the RGB latents themselves).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import render_dataset
from ..errors import One4DInputError
from ..pointmap import fit_normalization, normalize
from ..umc import build_mask
from . import recipe
from .cache import Clip, LatentCache
from .tasks import default_task_mix, draw_task


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


def load_training_set(work: Path) -> Any:
    """The rendered clips of ``<work>/data.npz``; a clear error with the command that makes them when absent."""
    path = Path(work) / "data.npz"
    if not path.is_file():
        raise One4DInputError(f"{path} does not exist: render the procedural clips first with "
                              f"`one4d train data --work {work}` (or run `one4d train all`).")
    return np.load(path)


def video_tensor(rgb_u8: np.ndarray) -> torch.Tensor:
    """``[N, F, H, W, 3]`` uint8 -> ``[N, 3, F, H, W]`` in [-1, 1]."""
    return torch.from_numpy(rgb_u8).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3)


def normalized_pointmaps(data, count: int | None = None) -> np.ndarray:
    """The first ``count`` clips' pointmaps (all by default), each normalized by its own fit (:mod:`one4d.pointmap`)."""
    pairs = list(zip(data["points"], data["valid"]))[:count]
    return np.stack([normalize(p, fit_normalization(p, v)) for p, v in pairs])


def pointmap_videos(data, count: int | None = None) -> np.ndarray:
    """The normalized pointmaps as 3-channel uint8 videos, [-1, 1] mapped to [0, 255] like RGB: how a VAE sees them."""
    return ((normalized_pointmaps(data, count) * 0.5 + 0.5) * 255).round().astype(np.uint8)


class ProceduralClips:
    """The rendered clips of ``<work>/data.npz`` as a clip source of the latent cache (:mod:`.cache`), each
    pointmap normalized by its own fit (:mod:`one4d.pointmap`)."""

    def __init__(self, work: Path):
        data = load_training_set(work)
        self.rgb, self.points, self.valid, self.captions = data["rgb"], data["points"], data["valid"], data["captions"]

    def __len__(self) -> int:
        return len(self.rgb)

    def __getitem__(self, i: int) -> Clip:
        p = self.points[i]
        return Clip(self.rgb[i], normalize(p, fit_normalization(p, self.valid[i])).astype(np.float32), str(self.captions[i]))


class LatentBatches:
    """Training batches from the latent cache: clean latents, a UMC task draw per clip, and text contexts."""

    def __init__(self, work: Path, seed: int, mix: dict[str, float] | None = None):
        self.cache = LatentCache(work)
        self.geometry = self.cache.geometry
        self.rng = np.random.default_rng(seed)
        self.mix = mix or default_task_mix()

    def __len__(self) -> int:
        return len(self.cache)

    def draw(self, batch: int):
        """``(rgb, xyz, mask, cond, context)`` of ``batch`` random clips."""
        idx = self.rng.integers(0, len(self), batch)
        tasks = [draw_task(self.rng, self.mix) for _ in idx]
        rows = self.cache.rows(idx)
        frames = rows["sparse"].shape[1]
        hw = tuple(rows["rgb"].shape[-2:])
        masks, conds = [], []
        for r, task in enumerate(tasks):
            if task == "text":
                ind, cond = [], self.cache.cond_text[0]
            elif task == "image":
                ind, cond = [0], rows["cond_image"][r]
            elif task == "video":
                ind, cond = list(range(frames)), rows["rgb"][r]
            else:
                ind = [int(j) for j in rows["sparse"][r] if j >= 0]
                cond = rows["cond_sparse"][r]
            masks.append(build_mask(ind, frames, hw, self.geometry))
            conds.append(cond[None])
        return rows["rgb"], rows["xyz"], torch.cat(masks), torch.cat(conds), rows["context"]
