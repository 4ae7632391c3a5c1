"""IMAGE batch conversions of the node pack (nodes/imaging.py): fit_frames (centre crop, then resize),
depth_to_image (near white, far black, one range per clip, invalid black) and to_image."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nodes.imaging import depth_to_image, fit_frames, to_image
from one4d.data.media import PAD_GRAY, _fit

BLUE, RED, WHITE, BLACK, GREEN = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)


def _quadrants(h: int, w: int) -> torch.Tensor:
    img = torch.zeros(h, w, 3)
    img[: h // 2, : w // 2], img[: h // 2, w // 2:] = torch.tensor(BLUE), torch.tensor(RED)
    img[h // 2:, : w // 2], img[h // 2:, w // 2:] = torch.tensor(WHITE), torch.tensor(BLACK)
    return img


def _check_quadrants(img: torch.Tensor, margin: int = 2) -> None:
    h, w = img.shape[:2]
    m = margin
    cells = [img[: h // 2 - m, : w // 2 - m], img[: h // 2 - m, w // 2 + m:],
             img[h // 2 + m:, : w // 2 - m], img[h // 2 + m:, w // 2 + m:]]
    for cell, color in zip(cells, (BLUE, RED, WHITE, BLACK)):
        torch.testing.assert_close(cell, torch.tensor(color).expand_as(cell), atol=1e-3, rtol=0)


def _green(img: torch.Tensor) -> torch.Tensor:
    return (img[..., 1] > 0.3) & (img[..., 0] < 0.7) & (img[..., 2] < 0.7)


# ----------------------------------------------------------------------------------------- fit_frames

def test_fit_frames_crops_the_sides_of_a_wide_batch():
    # 2 images of 40 x 100: the centre 40 x 40 (columns 30..69) holds the quadrants, the sides are green
    batch = torch.zeros(2, 40, 100, 3)
    batch[:] = torch.tensor(GREEN)
    batch[:, :, 30:70] = _quadrants(40, 40)
    batch[1, :, 30:70] = 1.0 - batch[1, :, 30:70]  # the second image differs: no mixing across the batch
    out = fit_frames(batch, 32, 32)
    assert out.shape == (2, 32, 32, 3) and out.dtype == torch.float32 and out.is_contiguous()
    assert not _green(out).any()  # the bands are cropped away, not squeezed in
    _check_quadrants(out[0])
    _check_quadrants(1.0 - out[1])


def test_fit_frames_crops_top_and_bottom_of_a_tall_image_for_a_wide_target():
    # 100 x 40 to 16 x 32 (aspect 2): the centre 20 rows (40..59) are kept
    img = torch.zeros(1, 100, 40, 3)
    img[:] = torch.tensor(GREEN)
    img[0, 40:60] = _quadrants(20, 40)
    out = fit_frames(img, 16, 32)
    assert out.shape == (1, 16, 32, 3)
    assert not _green(out).any()
    _check_quadrants(out[0], margin=1)


def test_fit_frames_same_aspect_resizes_without_cropping():
    img = torch.full((1, 64, 128, 3), 0.5)
    img[:, :, :8] = torch.tensor(GREEN)  # bands at both edges survive a pure resize
    img[:, :, -8:] = torch.tensor(GREEN)
    out = fit_frames(img, 32, 64)
    assert out.shape == (1, 32, 64, 3)
    assert _green(out[0, :, :3]).all() and _green(out[0, :, -3:]).all()
    torch.testing.assert_close(out[0, :, 8:-8], torch.full((32, 48, 3), 0.5), atol=1e-3, rtol=0)


def test_fit_frames_antialiases_when_shrinking_and_stays_in_range():
    # one-pixel stripes shrunk 3.2x average to grey (plain bilinear sampling aliases to 0.1 .. 0.9)
    stripes = (torch.arange(64) % 2).float()[None, None, :, None].expand(1, 64, 64, 3).contiguous()
    out = fit_frames(stripes, 20, 20)
    torch.testing.assert_close(out, torch.full_like(out, 0.5), atol=0.05, rtol=0)
    loud = torch.full((1, 30, 60, 3), 1.3)  # out of range: clamped to [0, 1]
    loud[:, 15:] = -0.3
    out = fit_frames(loud, 16, 16)
    assert (out[:, :6] == 1).all() and (out[:, -6:] == 0).all() and out.min() >= 0 and out.max() <= 1


def test_fit_frames_pads_like_the_library_reader():
    # a tall 40 x 20 picture into 16 x 16: gray side bands of 10 columns each, the whole picture in the middle
    img = torch.zeros(2, 40, 20, 3)
    img[..., 2] = 1.0
    img[1, :, :, 1] = 1.0
    out = fit_frames(img, 16, 16, "pad")
    assert out.shape == (2, 16, 16, 3)
    torch.testing.assert_close(out[:, :, :3], torch.full((2, 16, 3, 3), PAD_GRAY))
    torch.testing.assert_close(out[:, :, -3:], torch.full((2, 16, 3, 3), PAD_GRAY))
    torch.testing.assert_close(out[0, :, 5:11], torch.tensor([0.0, 0.0, 1.0]).expand(16, 6, 3))
    torch.testing.assert_close(out[1, :, 5:11], torch.tensor([0.0, 1.0, 1.0]).expand(16, 6, 3))  # no mixing across the batch
    library = _fit(img[0].numpy(), 16, 16, "pad")  # the CLI's reader: the same box, another resize filter
    assert np.abs(library - out[0].numpy()).max() < 0.3 and np.abs(library - out[0].numpy()).mean() < 0.02


def test_fit_frames_at_target_size_returns_the_values_as_float32():
    img = torch.rand(3, 16, 24, 3, generator=torch.Generator().manual_seed(1)).half()
    out = fit_frames(img, 16, 24)
    assert out.dtype == torch.float32 and out.shape == img.shape
    assert torch.equal(out, img.float())


# ----------------------------------------------------------------------------------------- depth_to_image

def test_depth_to_image_is_grey_near_white_far_black():
    depth = np.tile(np.linspace(1.0, 5.0, 50, dtype=np.float32), (2, 4, 1))  # [F=2, H=4, W=50], far to the right
    img = depth_to_image(depth)
    assert isinstance(img, torch.Tensor) and img.shape == (2, 4, 50, 3) and img.dtype == torch.float32
    assert torch.equal(img[..., 0], img[..., 1]) and torch.equal(img[..., 0], img[..., 2])  # grey
    row = img[0, 0, :, 0]
    assert row[0] == 1.0 and row[-1] == 0.0  # nearest white, farthest black (2-98 percentile ends clip)
    assert (row[1:] <= row[:-1]).all() and row[25] == pytest.approx(0.5, abs=0.05)  # a ramp in between


def test_depth_to_image_uses_one_range_for_the_whole_clip():
    near = np.full((1, 8, 8), 1.0, np.float32) + np.linspace(0, 0.5, 8, dtype=np.float32)
    far = near + 3.0
    img = depth_to_image(np.concatenate([near, far]))
    # per-frame ranges would paint both frames the same; one range keeps the far frame darker throughout
    assert img[1].max() < img[0].min()
    assert not torch.allclose(img[0], img[1])


def test_depth_to_image_range_ignores_outliers():
    depth = np.tile(np.linspace(1.0, 5.0, 101, dtype=np.float32), (1, 3, 1))
    base = depth_to_image(depth)
    spiked = depth.copy()
    spiked[0, 0, 50] = 1e4  # one far outlier: with a min-max range the whole ramp would turn white
    diff = (depth_to_image(spiked) - base).abs()
    diff[0, 0, 50] = 0
    assert diff.max() < 0.05


def test_depth_to_image_invalid_pixels_are_black():
    depth = np.tile(np.linspace(1.0, 5.0, 20, dtype=np.float32), (2, 5, 1))
    valid = np.ones(depth.shape, bool)
    valid[:, :, :5] = False  # masked nearest pixels: black, not white, and not part of the range
    img = depth_to_image(depth, valid)
    assert (img[:, :, :5] == 0).all()
    assert (img[:, :, 5] == 1.0).all()  # the nearest *valid* depth is white
    assert (img[:, :, -1] == 0).all() and (img[:, :, 6:-1, 0] > 0).all()
    bad = depth.copy()
    bad[0, 0, 3], bad[0, 0, 4], bad[0, 0, 6], bad[0, 0, 7] = 0.0, -2.0, np.nan, np.inf
    img = depth_to_image(bad)  # no mask: non-positive and non-finite depths are invalid
    assert (img[0, 0, [3, 4, 6, 7]] == 0).all() and (img[0, 0, [0, 1, 2, 5]] > 0.5).all()
    assert torch.isfinite(img).all()
    nothing = depth_to_image(depth, np.zeros(depth.shape, bool))
    assert nothing.shape == (2, 5, 20, 3) and (nothing == 0).all()


# ----------------------------------------------------------------------------------------- to_image

def test_to_image_float32_contiguous_clipped():
    rgb = np.random.default_rng(0).uniform(-0.5, 1.5, (2, 6, 4, 3))  # float64, out of range
    view = rgb.transpose(0, 2, 1, 3)  # a non-contiguous view
    img = to_image(view)
    assert isinstance(img, torch.Tensor) and img.dtype == torch.float32 and img.is_contiguous()
    assert img.shape == (2, 4, 6, 3)
    np.testing.assert_allclose(img.numpy(), np.clip(view, 0, 1), rtol=0, atol=1e-7)
    assert img.min() == 0 and img.max() == 1
