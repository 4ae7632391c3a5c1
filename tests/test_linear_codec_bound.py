"""scripts/linear_codec_bound.py: blocks keep every pixel once, and the linear codec's PSNR rises with its
channels until it is exact."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

_spec = importlib.util.spec_from_file_location("linear_codec_bound", Path(__file__).parents[1] / "scripts" / "linear_codec_bound.py")
bound = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bound)


def test_blocks_hold_every_pixel_once_in_block_order():
    clips = np.arange(2 * 4 * 8 * 8 * 3, dtype=np.float32).reshape(2, 4, 8, 8, 3)
    rows = bound.blocks(clips, time=2, space=4)
    assert rows.shape == (2 * 2 * 2 * 2, 2 * 4 * 4 * 3)
    assert sorted(rows.ravel().tolist()) == clips.ravel().tolist()
    assert np.array_equal(rows[0].reshape(2, 4, 4, 3), clips[0, :2, :4, :4])


def test_psnr_rises_with_channels_and_is_exact_with_all():
    rng = np.random.default_rng(0)
    clips = rng.random((30, 4, 8, 8, 3), dtype=np.float32)
    train, test = bound.blocks(clips[:20], 2, 4), bound.blocks(clips[20:], 2, 4)  # 160 rows: full rank
    psnr = [bound.linear_psnr(train, test, c) for c in (4, 16, 48)]
    assert psnr[0] < psnr[1] < psnr[2] < 40
    assert bound.linear_psnr(train, test, 96) > 80
