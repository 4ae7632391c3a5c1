"""The latent cache: every training clip encoded once (VAE latents of its RGB video, its normalized
pointmap and its UMC conditioning videos, and its caption's text context), so that training never runs the
VAE or the text encoder.

On disk, ``<work>/cache/``: shards ``shard-00000.safetensors`` ... of up to ``shard_size`` clips each, with
stacked tensors ``rgb``, ``xyz``, ``cond_image``, ``cond_sparse`` (``[n, C, T, h, w]``, fp16), ``context``
(``[n, L, D]``, fp16) and ``sparse`` (the sparse draw's frame indices, ``[n, F]``, -1 padded);
``shared.safetensors`` with ``cond_text`` (the all-gray video's latents, the same for every clip); and
``manifest.json`` with the latent geometry, the clip count, the shard size and the shards written so far.

Resumable: each shard is written atomically and then recorded in the manifest (also atomically), so an
interrupted encode continues with the first shard not recorded; the sparse draw of a shard is seeded by its
number, so a resumed cache equals an uninterrupted one. Training reads rows lazily through safetensors'
memory-mapped files, so the cache may be far larger than memory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..backbone import LatentGeometry
from ..codec import VideoCodec
from ..errors import One4DInputError
from ..export.atomic import atomic_path, write_bytes_atomic
from ..text import pad_text
from ..umc import build_condition_video
from .tasks import draw_sparse_indices

CACHE_DIR = "cache"
MANIFEST = "manifest.json"
FORMAT = "one4d-latent-cache"
KEYS = ("rgb", "xyz", "cond_image", "cond_sparse", "context", "sparse")


@dataclass
class Clip:
    """One training clip as the encoder takes it."""

    rgb: np.ndarray  # [F, H, W, 3] uint8
    pointmap: np.ndarray  # [F, H, W, 3] normalized (one4d.pointmap)
    caption: str


class ClipSource(Protocol):
    """Training clips by index: the procedural set today, real 4D datasets alike."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Clip: ...


def _encode(codec: VideoCodec, videos: torch.Tensor, batch: int = 8) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([codec.encode(videos[i : i + batch]) for i in range(0, len(videos), batch)]).half()


def _videos(clips: list[Clip], key: str) -> torch.Tensor:
    arr = np.stack([getattr(c, key) for c in clips])
    t = torch.from_numpy(arr).float()
    return (t.div(127.5).sub(1) if key == "rgb" else t).permute(0, 4, 1, 2, 3)


def encode_shard(clips: list[Clip], codec: VideoCodec, text_encoder: Callable[[str], torch.Tensor], text_length: int,
                 rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The cache tensors of a list of clips (module docstring)."""
    f = clips[0].rgb.shape[0]
    sparse = [draw_sparse_indices(rng, f) for _ in clips]
    frames01 = torch.from_numpy(np.stack([c.rgb for c in clips])).float() / 255
    image = torch.cat([build_condition_video(frames01[i, :1], [0], f) for i in range(len(clips))])
    sparse_v = torch.cat([build_condition_video(frames01[i, s], s, f) for i, s in enumerate(sparse)])
    padded = np.full((len(clips), f), -1, np.int64)
    for i, s in enumerate(sparse):
        padded[i, : len(s)] = s
    return {
        "rgb": _encode(codec, _videos(clips, "rgb")),
        "xyz": _encode(codec, _videos(clips, "pointmap")),
        "cond_image": _encode(codec, image),
        "cond_sparse": _encode(codec, sparse_v),
        "context": torch.cat([pad_text(text_encoder(c.caption), text_length) for c in clips]).half(),
        "sparse": torch.from_numpy(padded),
    }


def write_cache(work: Path, source: ClipSource, codec: VideoCodec, text_encoder: Callable[[str], torch.Tensor], text_length: int,
                shard_size: int = 64, seed: int = 1) -> Path:
    """Encode ``source`` into ``<work>/cache`` shard by shard, resuming after the last recorded shard."""
    folder = Path(work) / CACHE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    g = codec.geometry
    meta = {"format": FORMAT, "clips": len(source), "shard_size": shard_size, "text_length": text_length,
            "geometry": [g.channels, g.time_stride, g.space_stride, g.patch]}
    manifest = _read_manifest(folder)
    if manifest is not None and {k: manifest.get(k) for k in meta} != meta:
        raise One4DInputError(f"{folder / MANIFEST} was written for other clips or another model ({_diff(manifest, meta)}); "
                              "delete the cache folder to encode anew, or use another --work folder.")
    done = set(manifest["shards"]) if manifest else set()
    if not (folder / "shared.safetensors").is_file():
        frames, h, w = source[0].rgb.shape[:3]
        with atomic_path(folder / "shared.safetensors") as tmp:
            save_file({"cond_text": _encode(codec, torch.zeros(1, 3, frames, h, w))}, str(tmp))
    for k in range(0, (len(source) + shard_size - 1) // shard_size):
        name = f"shard-{k:05d}.safetensors"
        if name in done:
            continue
        clips = [source[i] for i in range(k * shard_size, min(len(source), (k + 1) * shard_size))]
        tensors = encode_shard(clips, codec, text_encoder, text_length, np.random.default_rng([seed, k]))
        with atomic_path(folder / name) as tmp:
            save_file({n: t.contiguous() for n, t in tensors.items()}, str(tmp))
        done.add(name)
        write_bytes_atomic(folder / MANIFEST, json.dumps({**meta, "shards": sorted(done)}, indent=1).encode())
    return folder


def _read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def _diff(old: dict, new: dict) -> str:
    return ", ".join(f"{k} {old.get(k)!r} there, {v!r} here" for k, v in new.items() if old.get(k) != v)


class LatentCache:
    """Read access to a complete cache: its geometry and any clips' rows, loaded lazily."""

    def __init__(self, work: Path):
        folder = Path(work) / CACHE_DIR
        manifest = _read_manifest(folder)
        if manifest is None:
            raise One4DInputError(f"no latent cache in {work}; run `one4d train encode --work {work}` first.")
        shards = (manifest["clips"] + manifest["shard_size"] - 1) // manifest["shard_size"]
        if len(manifest["shards"]) < shards:
            raise One4DInputError(f"the latent cache in {work} is incomplete ({len(manifest['shards'])} of {shards} shards); "
                                  "run `one4d train encode` again to finish it.")
        self.folder, self.manifest = folder, manifest
        self.geometry = LatentGeometry(*manifest["geometry"])
        with safe_open(str(folder / "shared.safetensors"), framework="pt") as f:
            self.cond_text = f.get_tensor("cond_text").float()

    def __len__(self) -> int:
        return int(self.manifest["clips"])

    def rows(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The cache tensors of clips ``indices`` (in that order), as float32 (``sparse`` as int64)."""
        size = self.manifest["shard_size"]
        parts: dict[str, list[torch.Tensor]] = {k: [] for k in KEYS}
        for i in indices:
            with safe_open(str(self.folder / f"shard-{int(i) // size:05d}.safetensors"), framework="pt") as f:
                for k in KEYS:
                    parts[k].append(f.get_slice(k)[int(i) % size : int(i) % size + 1])
        # each part up-cast before joining: under CPU autocast (``--precision bf16``) torch.cat refuses float16
        return {k: torch.cat(v) if k == "sparse" else torch.cat([t.float() for t in v]) for k, v in parts.items()}
