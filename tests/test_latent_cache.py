"""The latent cache: sharded safetensors with a manifest, resumable to the same bytes as an uninterrupted
encode, refused when written for other clips or incomplete, and read lazily row by row."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from one4d.backbone import build_vae
from one4d.codec import VideoCodec
from one4d.errors import One4DInputError
from one4d.text import HashTextEncoder
from one4d.training import cache as cache_mod
from one4d.training.cache import Clip, LatentCache, write_cache
from one4d.training.data import LatentBatches


class Clips:
    def __init__(self, n: int, frames: int = 5):
        rng = np.random.default_rng(0)
        self.items = [Clip((rng.random((frames, 16, 16, 3)) * 255).astype(np.uint8), rng.uniform(-1, 1, (frames, 16, 16, 3)).astype(np.float32),
                           f"clip {i}") for i in range(n)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Clip:
        return self.items[i]


def _codec() -> VideoCodec:
    torch.manual_seed(0)
    return VideoCodec(build_vae({"base_dim": 8, "z_dim": 8, "dim_mult": [1, 2, 4], "temperal_downsample": [True, True],
                                 "latents_mean": [0.0] * 8, "latents_std": [1.0] * 8}).eval())


def test_an_interrupted_encode_resumes_to_the_same_cache(tmp_path, monkeypatch):
    codec, text = _codec(), HashTextEncoder(16, 8)
    write_cache(tmp_path / "a", Clips(5), codec, text, 8, shard_size=2)
    real = cache_mod.encode_shard
    calls = []

    def flaky(clips, *args):
        calls.append(len(clips))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the machine went away while encoding the second shard
        return real(clips, *args)

    monkeypatch.setattr(cache_mod, "encode_shard", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_cache(tmp_path / "b", Clips(5), codec, text, 8, shard_size=2)
    manifest = json.loads((tmp_path / "b/cache/manifest.json").read_text())
    assert manifest["shards"] == ["shard-00000.safetensors"] and not (tmp_path / "b/cache/shard-00001.safetensors").exists()
    with pytest.raises(One4DInputError, match="incomplete \\(1 of 3 shards\\)"):
        LatentCache(tmp_path / "b")
    monkeypatch.setattr(cache_mod, "encode_shard", real)
    write_cache(tmp_path / "b", Clips(5), codec, text, 8, shard_size=2)
    for name in ("shard-00000", "shard-00001", "shard-00002", "shared"):
        a, b = load_file(tmp_path / f"a/cache/{name}.safetensors"), load_file(tmp_path / f"b/cache/{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_rows_and_batches_read_the_cache_lazily(tmp_path):
    codec = _codec()
    write_cache(tmp_path, Clips(5), codec, HashTextEncoder(16, 8), 8, shard_size=2)
    cache = LatentCache(tmp_path)
    assert len(cache) == 5 and cache.geometry == codec.geometry
    rows = cache.rows([4, 1, 1])
    assert rows["rgb"].shape == (3, 8, 2, 4, 4) and rows["context"].shape == (3, 8, 16)
    assert torch.equal(rows["rgb"][1], rows["rgb"][2]) and not torch.equal(rows["rgb"][0], rows["rgb"][1])
    direct = codec.encode(torch.from_numpy(Clips(5)[4].rgb[None]).float().div(127.5).sub(1).permute(0, 4, 1, 2, 3))
    assert torch.allclose(rows["rgb"][0], direct[0].half().float())
    rgb, xyz, mask, cond, ctx = LatentBatches(tmp_path, seed=0).draw(4)
    assert rgb.shape == xyz.shape == cond.shape == (4, 8, 2, 4, 4) and mask.shape == (4, 4, 2, 4, 4) and ctx.shape == (4, 8, 16)


def test_a_cache_of_other_clips_is_refused(tmp_path):
    codec, text = _codec(), HashTextEncoder(16, 8)
    write_cache(tmp_path, Clips(3), codec, text, 8, shard_size=2)
    with pytest.raises(One4DInputError, match="other clips or another model \\(clips 3 there, 4 here\\).*delete the cache"):
        write_cache(tmp_path, Clips(4), codec, text, 8, shard_size=2)
