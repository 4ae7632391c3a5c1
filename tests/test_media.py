"""Media in and out: reading the user's images and videos at the model size (one4d/data/media.py), writing MP4
and PNG atomically (one4d/export/video.py) and the preview sheet (one4d/export/sheet.py)."""
from __future__ import annotations

import builtins
import os

import cv2
import numpy as np
import pytest

from one4d.data.media import read_image, read_video
from one4d.errors import One4DInputError
from one4d.export import atomic
from one4d.export.sheet import colorize_depth, preview_sheet
from one4d.export.video import write_png, write_video

RED, GREEN, BLUE, WHITE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)


def _save_rgb(path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def _quadrants(h: int, w: int, colors=(BLUE, RED, WHITE, BLACK)) -> np.ndarray:
    """An RGB image: top-left, top-right, bottom-left, bottom-right in the given colours."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2], img[: h // 2, w // 2:] = colors[0], colors[1]
    img[h // 2:, : w // 2], img[h // 2:, w // 2:] = colors[2], colors[3]
    return img


def _check_quadrants(img: np.ndarray, colors=(BLUE, RED, WHITE, BLACK), margin: int = 2) -> None:
    h, w = img.shape[:2]
    m = margin
    cells = [img[: h // 2 - m, : w // 2 - m], img[: h // 2 - m, w // 2 + m:],
             img[h // 2 + m:, : w // 2 - m], img[h // 2 + m:, w // 2 + m:]]
    for cell, color in zip(cells, colors):
        np.testing.assert_allclose(cell, np.broadcast_to(np.array(color) / 255.0, cell.shape), atol=1.5 / 255)


# ----------------------------------------------------------------------------------------- read_image

def test_read_image_crops_the_centre_of_a_wide_image_then_resizes(tmp_path):
    # 60 x 120: the square centre (columns 30..89) holds the quadrants, the side bands are green
    img = np.zeros((60, 120, 3), np.uint8)
    img[:] = GREEN
    img[:, 30:90] = _quadrants(60, 60)
    _save_rgb(tmp_path / "wide.png", img)
    out = read_image(tmp_path / "wide.png", 32, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    green = (out[..., 1] > 0.5) & (out[..., 0] < 0.5) & (out[..., 2] < 0.5)
    assert not green.any()  # no trace of the green side bands: cropped, not squeezed
    _check_quadrants(out)  # RGB order, no flip or transpose


def test_read_image_crops_the_centre_of_a_tall_image_to_a_wide_target(tmp_path):
    # 120 x 60 to 16 x 32 (aspect 2): the centre 30 rows (45..74) are kept, the rest is green
    img = np.zeros((120, 60, 3), np.uint8)
    img[:] = GREEN
    img[45:75] = _quadrants(30, 60)
    _save_rgb(tmp_path / "tall.png", img)
    out = read_image(tmp_path / "tall.png", 16, 32)
    assert out.shape == (16, 32, 3)
    _check_quadrants(out, margin=1)


def test_read_image_at_its_own_size_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    _save_rgb(tmp_path / "same.png", img)
    out = read_image(str(tmp_path / "same.png"), 24, 40)
    np.testing.assert_array_equal(out, img.astype(np.float32) / 255.0)


def test_read_image_downscales_with_area_filtering(tmp_path):
    """A one-pixel checkerboard halved: area filtering averages every 2x2 block to mid-grey (nearest-neighbour
    or a sharp filter would keep black and white pixels)."""
    board = ((np.indices((64, 96)).sum(0) % 2) * 255).astype(np.uint8)
    _save_rgb(tmp_path / "board.png", np.repeat(board[..., None], 3, -1))
    out = read_image(tmp_path / "board.png", 32, 48)
    np.testing.assert_allclose(out, 0.5, atol=1 / 255)


def test_read_image_errors_name_the_file(tmp_path):
    with pytest.raises(One4DInputError, match=r"cannot read image '.*missing\.png'; give a PNG or JPEG"):
        read_image(tmp_path / "missing.png", 32, 32)
    (tmp_path / "garbage.png").write_bytes(b"\x89PNG not really" + bytes(100))
    with pytest.raises(One4DInputError, match=r"garbage\.png"):
        read_image(tmp_path / "garbage.png", 32, 32)


# ----------------------------------------------------------------------------------------- read_video

def _color_frames(n: int, h: int, w: int) -> np.ndarray:
    """Frames in [0, 1]: frame t is a solid colour, cycling red, green, blue."""
    frames = np.zeros((n, h, w, 3), np.float32)
    for t in range(n):
        frames[t, ..., t % 3] = 0.8
    return frames


def test_read_video_reads_frames_in_order_cropped_and_resized(tmp_path):
    frames = _color_frames(7, 48, 96)
    frames[:, :, :24] = (0.0, 1.0, 1.0)  # cyan side bands, cropped away by a square target
    frames[:, :, 72:] = (0.0, 1.0, 1.0)
    write_video(tmp_path / "clip.mp4", frames)
    out = read_video(tmp_path / "clip.mp4", 32, 32, max_frames=100)
    assert out.shape == (7, 32, 32, 3) and out.dtype == np.float32
    centre = out[:, 4:-4, 4:-4]
    for t in range(7):
        expect = np.zeros(3)
        expect[t % 3] = 0.8
        np.testing.assert_allclose(centre[t].mean(axis=(0, 1)), expect, atol=0.05)
    assert not ((out[..., 1] > 0.5) & (out[..., 2] > 0.5)).any()  # the cyan side bands were cropped away


def test_read_video_stops_at_max_frames(tmp_path):
    write_video(tmp_path / "clip.mp4", _color_frames(7, 32, 32))
    out = read_video(tmp_path / "clip.mp4", 32, 32, max_frames=4)
    assert out.shape == (4, 32, 32, 3)
    assert [int(np.argmax(f.mean(axis=(0, 1)))) for f in out] == [0, 1, 2, 0]  # the first four, in order


def test_read_video_errors_name_the_file(tmp_path):
    with pytest.raises(One4DInputError, match=r"cannot read frames from video '.*nothing\.mp4'"):
        read_video(tmp_path / "nothing.mp4", 32, 32, 5)
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(One4DInputError, match=r"notes\.mp4.*MP4/AVI"):
        read_video(tmp_path / "notes.mp4", 32, 32, 5)


# ----------------------------------------------------------------------------------------- write_video / write_png

def _decode(path) -> tuple[np.ndarray, float]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img[..., ::-1].astype(np.float32) / 255.0)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return np.stack(frames), fps


def test_write_video_round_trip(tmp_path):
    frames = _color_frames(6, 48, 80)
    frames[:, :, :40, 2] = np.linspace(0, 1, 48)[None, :, None]  # a vertical gradient on the left half
    frames[0, :16, 48:64] = 1.5  # out of range: clipped to white, not wrapped around to grey
    frames[1, :16, 48:64] = -0.5  # clipped to black
    path = write_video(tmp_path / "out.mp4", frames, fps=12)
    assert path == tmp_path / "out.mp4"
    got, fps = _decode(path)
    assert got.shape == frames.shape and fps == 12
    assert np.abs(got - np.clip(frames, 0, 1)).mean() < 0.02
    assert got[0, 2:14, 50:62].min() > 0.9 and got[1, 2:14, 50:62].max() < 0.1
    for t in range(6):  # colour order: frame t is red, green or blue
        assert int(np.argmax(got[t, :, 40:].mean(axis=(0, 1)))) == t % 3
    assert os.listdir(tmp_path) == ["out.mp4"]  # no temporary file left


class _FramesThatFail:
    """Frames that fail after two were written (a producer crashing mid-clip); records the folder then."""

    shape = (5, 16, 16, 3)

    def __init__(self, folder):
        self.folder, self.seen = folder, []

    def __len__(self) -> int:  # an array of frames has a length (progress reports use it)
        return self.shape[0]

    def __iter__(self):
        yield np.full((16, 16, 3), 0.5, np.float32)
        yield np.full((16, 16, 3), 0.5, np.float32)
        self.seen = sorted(os.listdir(self.folder))
        raise RuntimeError("frame producer crashed")


def test_write_video_failure_leaves_nothing_behind(tmp_path):
    (tmp_path / "out.mp4").write_bytes(b"old")
    frames = _FramesThatFail(tmp_path)
    with pytest.raises(RuntimeError, match="crashed"):
        write_video(tmp_path / "out.mp4", frames)
    assert len(frames.seen) == 2  # a partial file existed while writing (next to the old one) ...
    assert os.listdir(tmp_path) == ["out.mp4"] and (tmp_path / "out.mp4").read_bytes() == b"old"  # ... and is gone
    with pytest.raises(RuntimeError, match="crashed"):
        write_video(tmp_path / "new.mp4", _FramesThatFail(tmp_path))
    assert os.listdir(tmp_path) == ["out.mp4"]


def test_write_png_round_trip_is_exact_and_overwrites(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 36, 3), dtype=np.uint8)
    (tmp_path / "a.png").write_bytes(b"old")
    assert write_png(tmp_path / "a.png", img) == tmp_path / "a.png"
    back = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_COLOR)[..., ::-1]
    np.testing.assert_array_equal(back, img)
    assert os.listdir(tmp_path) == ["a.png"]


def test_write_png_failure_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"old")
    img = np.zeros((8, 8, 3), np.uint8)

    class _FullDisk:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[:10])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic, "open", lambda p, mode="r": _FullDisk(builtins.open(p, mode)), raising=False)  # noqa: SIM115
    with pytest.raises(OSError, match="No space left"):
        write_png(tmp_path / "a.png", img)
    with pytest.raises(OSError, match="No space left"):
        write_png(tmp_path / "b.png", img)
    assert os.listdir(tmp_path) == ["a.png"] and (tmp_path / "a.png").read_bytes() == b"old"


# ----------------------------------------------------------------------------------------- sheet

def _clip(frames=7, h=12, w=16):
    """A clip whose frame t is the solid grey 30 * t (RGB) and 20 + t (input); depth 1..3 left to right."""
    rgb = np.stack([np.full((h, w, 3), 30 * t / 255.0, np.float32) for t in range(frames)])
    inputs = np.stack([np.full((h, w, 3), (20 + t) / 255.0, np.float32) for t in range(frames)])
    depth = np.broadcast_to(np.linspace(1.0, 3.0, w, dtype=np.float32), (frames, h, w)).copy()
    valid = np.ones((frames, h, w), bool)
    valid[:, :2, :2] = False
    f = 10.0
    K = np.tile(np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], np.float32), (frames, 1, 1))
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    cam = np.stack([(u - K[0, 0, 2]) / f, (v - K[0, 1, 2]) / f, np.ones_like(u)], -1)
    points = cam[None] * depth[..., None]
    return inputs, rgb, depth, valid, points, K


def test_preview_sheet_layout():
    inputs, rgb, depth, valid, points, K = _clip()
    h, w = 12, 16
    sheet = preview_sheet(inputs, rgb, depth, valid, points, K, rows=4, scale=3)
    cell_h, cell_w = h + 4, w + 4  # 2-pixel white frame around every cell
    assert sheet.shape == (4 * cell_h * 3, 4 * cell_w * 3, 3) and sheet.dtype == np.uint8
    small = sheet[::3, ::3]
    np.testing.assert_array_equal(np.repeat(np.repeat(small, 3, 0), 3, 1), sheet)  # nearest-neighbour upscale
    dcol = colorize_depth(depth, valid)
    for r, t in enumerate([0, 2, 4, 6]):  # 4 rows evenly over 7 frames
        row = small[r * cell_h:(r + 1) * cell_h]
        cells = [row[2:-2, c * cell_w + 2:(c + 1) * cell_w - 2] for c in range(4)]
        assert (row[:2] == 255).all() and (row[:, :2] == 255).all()  # the white frame
        assert (cells[0] == 20 + t).all()  # input column
        assert (cells[1] == 30 * t).all()  # RGB column, this row's frame
        np.testing.assert_array_equal(cells[2], dcol[t])  # depth column
        cloud = cells[3]
        drawn = (cloud != 24).any(-1)
        assert drawn.mean() > 0.3 and (cloud[drawn] == 30 * t).all()  # the splat uses the frame's colours


def test_preview_sheet_leaves_invalid_pixels_out_of_depth_and_cloud():
    inputs, rgb, depth, valid, points, K = _clip(frames=3)
    rgb[:, :, :8] = (1.0, 0.0, 0.0)  # the left half: pure red, and invalid
    valid[:, :, :8] = False
    sheet = preview_sheet(inputs, rgb, depth, valid, points, K, rows=3, scale=1)
    cell_h, cell_w = 12 + 4, 16 + 4
    for r in range(3):
        row = sheet[r * cell_h:(r + 1) * cell_h, :, :].astype(int)
        depth_cell = row[2:-2, 2 * cell_w + 2:3 * cell_w - 2]
        cloud = row[2:-2, 3 * cell_w + 2:4 * cell_w - 2]
        assert (depth_cell[:, :8] == 0).all() and (depth_cell[:, 8:] != 0).any(-1).all()  # invalid depth is black
        drawn = (cloud != 24).any(-1)
        assert drawn.mean() > 0.15  # the valid half is splatted ...
        assert not (cloud == (255, 0, 0)).all(-1).any()  # ... and not one invalid (red) point


def test_preview_sheet_with_fewer_frames_than_rows():
    inputs, rgb, depth, valid, points, K = _clip(frames=2)
    sheet = preview_sheet(inputs, rgb, depth, valid, points, K, rows=4, scale=1)
    assert sheet.shape == (2 * 16, 4 * 20, 3)


def test_colorize_depth_near_red_far_blue_and_masked_black():
    depth = np.tile(np.linspace(1.0, 5.0, 101, dtype=np.float32), (3, 1))
    rgb = colorize_depth(depth).astype(int)
    assert rgb.shape == (3, 101, 3) and colorize_depth(depth).dtype == np.uint8
    red_minus_blue = rgb[0, :, 0] - rgb[0, :, 2]
    assert red_minus_blue[:33].mean() > 100 and red_minus_blue[-33:].mean() < -50  # near red, far blue
    assert red_minus_blue[0] > 0 > red_minus_blue[-1]
    # invalid pixels are black: masked out, or (without a mask) not positive / not finite
    valid = np.ones_like(depth, bool)
    valid[1, 10:20] = False
    masked = colorize_depth(depth, valid)
    assert (masked[1, 10:20] == 0).all() and (masked[valid] != 0).any(-1).all()
    bad = depth.copy()
    bad[2, 5], bad[2, 6], bad[2, 7] = 0.0, -1.0, np.nan
    out = colorize_depth(bad)
    assert (out[2, 5:8] == 0).all() and (out[2, 8:] != 0).any(-1).all()


def test_colorize_depth_range_ignores_outliers_and_masked_values():
    depth = np.tile(np.linspace(1.0, 5.0, 101, dtype=np.float32), (3, 1))
    base = colorize_depth(depth)
    spiked = depth.copy()
    spiked[0, 50] = 1000.0  # one far outlier: the 2-98 percentile range keeps the colours (a min-max range
    diff = np.abs(colorize_depth(spiked).astype(int) - base)  # would paint the whole ramp in the near colour)
    diff[0, 50] = 0
    assert diff.max() <= 25 and diff.mean() < 3
    valid = np.ones_like(depth, bool)
    far = depth.copy()
    far[:, 60:] = 500.0  # far and masked: not part of the range
    valid[:, 60:] = False
    np.testing.assert_array_equal(colorize_depth(far, valid)[:, :60], colorize_depth(depth[:, :60]))
