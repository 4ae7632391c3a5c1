"""Photos as a photographer has them: EXIF orientation, 16-bit PNG, grayscale, RGBA (alpha dropped with a
note), and non-square pictures cropped or padded with a note saying which."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from one4d.data.media import PAD_GRAY, read_image
from one4d.errors import One4DInputError

Image = pytest.importorskip("PIL.Image", reason="writing EXIF test images needs Pillow")


def _quadrants(h: int, w: int) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2], img[: h // 2, w // 2:] = (0, 0, 255), (255, 0, 0)  # top: blue, red
    img[h // 2:, : w // 2], img[h // 2:, w // 2:] = (255, 255, 255), (0, 0, 0)  # bottom: white, black
    return img


def test_exif_orientation_is_honoured(tmp_path):
    upright = _quadrants(32, 32)
    stored = np.rot90(upright, k=1)  # stored rotated; EXIF orientation 6 says "rotate 90 clockwise to view"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(stored)).save(tmp_path / "photo.jpg", exif=exif.tobytes(), quality=100)
    out = read_image(tmp_path / "photo.jpg", 32, 32)
    assert np.abs(out[4, 4] - [0, 0, 1]).max() < 0.1 and np.abs(out[4, 28] - [1, 0, 0]).max() < 0.1


def test_16_bit_png_keeps_its_precision(tmp_path):
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16)[None, :, None].repeat(8, 0).repeat(3, 2)
    cv2.imwrite(str(tmp_path / "deep.png"), ramp)
    out = read_image(tmp_path / "deep.png", 8, 64)
    np.testing.assert_allclose(out[0, :, 0], ramp[0, :, 0] / 65535.0, atol=1e-4)  # 8 bits would be off by up to 1/510


def test_grayscale_and_rgba_load_and_alpha_is_noted(tmp_path):
    gray = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    notes: list[str] = []
    out = read_image(tmp_path / "gray.png", 32, 32, notes=notes)
    assert out.shape == (32, 32, 3) and np.allclose(out[..., 0], out[..., 2]) and notes == []
    rgba = np.dstack([_quadrants(32, 32)[..., ::-1], np.full((32, 32), 40, np.uint8)])
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    out = read_image(tmp_path / "rgba.png", 32, 32, notes=notes)
    assert np.abs(out[4, 4] - [0, 0, 1]).max() < 0.02  # colour kept, not blended with the alpha
    assert len(notes) == 1 and "rgba.png' has an alpha channel; it was dropped" in notes[0]


def test_crop_and_pad_say_what_they_did(tmp_path):
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:] = (255, 0, 0)
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    notes: list[str] = []
    crop = read_image(tmp_path / "wide.png", 32, 32, notes=notes)
    assert np.allclose(crop, [0, 0, 1], atol=1e-3)
    assert notes[-1].startswith("the 80x40 picture was cropped to its centre 40x40 to match the model's 32x32")
    pad = read_image(tmp_path / "wide.png", 32, 32, fit="pad", notes=notes)
    assert np.allclose(pad[0, 16], PAD_GRAY) and np.allclose(pad[16, 16], [0, 0, 1], atol=1e-3)  # gray bands above and below
    assert np.allclose(pad[:7].mean(), PAD_GRAY) and "padded with gray to 80x80" in notes[-1]
    same = read_image(tmp_path / "wide.png", 16, 32, fit="pad", notes=notes)
    assert same.shape == (16, 32, 3) and len(notes) == 2  # the right aspect already: nothing to say
    with pytest.raises(One4DInputError, match="fit 'squash' is unknown; use 'crop'.*or 'pad'"):
        read_image(tmp_path / "wide.png", 32, 32, fit="squash")


def test_one4d_run_says_what_it_did_to_a_wide_photo(tmp_path, capsys):
    from one4d.cli import main

    wide = np.zeros((40, 80, 3), np.uint8)
    wide[:, :, 1] = 200
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    assert main(["run", "--image", str(tmp_path / "wide.png"), "--fit", "pad", "--steps", "2", "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning: the 80x40 picture was padded with gray to 80x80 to match the model's 64x64" in err
    assert err.count("trained only on synthetic rooms") == 1 and "use the real Wan2.1-Fun checkpoints" in err
