"""Unified Masked Conditioning against hand-computed layouts, and its input validation."""
from __future__ import annotations

import pytest
import torch

from one4d.backbone import WAN21
from one4d.errors import One4DInputError
from one4d.umc import (
    build_condition_video,
    build_mask,
    mode_of,
    parse_indices,
    sparse_indices,
    validate_video_size,
)


def test_sparse_mask_81_frames_by_hand():
    m = build_mask([0, 20, 40, 60, 80], 81, (2, 3), WAN21)
    assert m.shape == (1, 4, 21, 2, 3)
    expect = torch.zeros(4, 21)
    expect[:, 0] = 1  # frame 0 packed four times into latent frame 0
    for t in (5, 10, 15, 20):  # frame 20k -> packed slot 20k + 3 -> (t = 5k, channel 3)
        expect[3, t] = 1
    assert torch.equal(m[0, :, :, 0, 0], expect)
    assert torch.equal(m[0, :, :, 1, 2], expect)


def test_image_video_text_masks_by_hand():
    img = build_mask([0], 17, (1, 1), WAN21)[0, :, :, 0, 0]
    expect = torch.zeros(4, 5)
    expect[:, 0] = 1
    assert torch.equal(img, expect)
    assert torch.equal(build_mask(list(range(17)), 17, (1, 1), WAN21), torch.ones(1, 4, 5, 1, 1))
    assert torch.equal(build_mask([], 17, (1, 1), WAN21), torch.zeros(1, 4, 5, 1, 1))
    # frame 1 -> slot 4 -> latent 1 channel 0; frame 6 -> slot 9 -> latent 2 channel 1
    one = build_mask([1, 6], 9, (1, 1), WAN21)[0, :, :, 0, 0]
    expect = torch.zeros(4, 3)
    expect[0, 1] = 1
    expect[1, 2] = 1
    assert torch.equal(one, expect)


def test_condition_video_is_midgray_where_unobserved():
    frames = torch.rand(2, 16, 32, 3)
    video = build_condition_video(frames, [0, 4], 9)
    assert video.shape == (1, 3, 9, 16, 32)
    torch.testing.assert_close(video[0, :, 4], frames[1].permute(2, 0, 1) * 2 - 1)
    torch.testing.assert_close(video[0, :, 0], frames[0].permute(2, 0, 1) * 2 - 1)
    assert video[0, :, [1, 2, 3, 5, 6, 7, 8]].abs().max() == 0  # 0 in [-1, 1] = gray 0.5


def test_indices_parsing_and_modes():
    assert parse_indices("0,20,40,80", 81) == [0, 20, 40, 80]
    assert parse_indices("first", 17) == [0]
    assert parse_indices("all", 5) == [0, 1, 2, 3, 4]
    assert parse_indices("even:5", 81) == [0, 20, 40, 60, 80]
    assert parse_indices("none", 17) == []
    assert sparse_indices(81, 0.06) == [0, 20, 40, 60, 80]  # round(4.86) = 5 frames
    assert sparse_indices(81, 0.05) == [0, 27, 53, 80]  # round(4.05) = 4 frames
    assert sparse_indices(17, 0.03) == [0, 16]
    assert [mode_of(i, 17) for i in ([], [0], [0, 8, 16], list(range(17)))] == ["text", "image", "sparse", "video"]
    assert WAN21.latent_frames(81) == 21 and WAN21.latent_frames(1) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_indices("0,90", 81), "outside the video of 81 frames"),
        (lambda: parse_indices("0,a", 81), "not understood"),
        (lambda: parse_indices("0,0", 81), "repeat"),
        (lambda: parse_indices("0,20", 81, available=1), "1 image"),
        (lambda: validate_video_size(80, 64, 64, WAN21), "not 4k\\+1.*77 or 81"),
        (lambda: validate_video_size(81, 60, 64, WAN21), "height 60.*use 64"),
        (lambda: validate_video_size(81, 64, 0, WAN21), "width 0"),
        (lambda: build_condition_video(torch.full((1, 16, 16, 3), float("nan")), [0], 5), "NaN"),
        (lambda: build_condition_video(torch.rand(2, 16, 16, 3), [0], 5), "2 conditioning image"),
        (lambda: build_condition_video(torch.rand(1, 16, 16), [0], 5), "\\[K, H, W, 3\\]"),
        (lambda: sparse_indices(17, 0.0), "ratio"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(One4DInputError, match=message):
        call()
