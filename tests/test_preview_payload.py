"""The preview payload (.o4dp) the 4D preview widget reads: round trip, budget, bad input."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import torch

from one4d.bench.preview import make_demo_scene
from one4d.errors import One4DInputError
from one4d.export.preview_payload import MAGIC, VERSION, read_preview_payload, write_preview_payload


@pytest.fixture(scope="module")
def scene():
    return make_demo_scene(frames=5, height=24, width=32)


def _rows(a: np.ndarray) -> set:
    return {tuple(r) for r in np.asarray(a).tolist()}


def test_round_trip_keeps_every_valid_point_with_its_colour(tmp_path, scene):
    path = tmp_path / "scene.o4dp"
    meta = write_preview_payload(path, scene["points"], scene["colors"], scene["valid"], scene["K"], scene["c2w"], fps=12)
    data = read_preview_payload(path)
    F, H, W = scene["valid"].shape
    n_valid = int(scene["valid"][0].sum())
    assert meta["frames"] == data["frames"] == F
    assert meta["points_per_frame"] == [n_valid] * F
    assert meta["total_points"] == n_valid * F and meta["dropped_points"] == 0
    assert meta["bytes"] == os.path.getsize(path)
    assert data["fps"] == 12.0
    np.testing.assert_allclose(data["K"], scene["K"])
    np.testing.assert_allclose(data["c2w"], scene["c2w"])
    for t in range(F):
        mask = scene["valid"][t]
        want_xyz = scene["points"][t][mask].astype(np.float16).astype(np.float32)
        want = _rows(np.concatenate([want_xyz, scene["colors"][t][mask].astype(np.float32)], axis=1))
        got = _rows(np.concatenate([data["points"][t], data["colors"][t].astype(np.float32)], axis=1))
        assert got == want  # same points, each with its own colour, masked ones gone
    bbox = meta["bbox"]
    allpts = np.concatenate(data["points"])
    np.testing.assert_allclose(bbox["min"], allpts.min(0))
    np.testing.assert_allclose(bbox["max"], allpts.max(0))


def test_layout_is_little_endian_versioned_and_aligned(tmp_path, scene):
    path = tmp_path / "scene.o4dp"
    write_preview_payload(path, scene["points"], scene["colors"])
    raw = path.read_bytes()
    magic, version, header_len, reserved = struct.unpack_from("<4sIII", raw)
    assert (magic, version, reserved) == (MAGIC, VERSION, 0)
    header = read_preview_payload(path)["header"]
    assert header["positions"]["offset"] == 16 + header_len
    assert header["positions"]["offset"] % 8 == 0 and header["colors"]["offset"] % 8 == 0
    n = header["total_points"]
    assert header["colors"]["offset"] + 4 * n == len(raw)
    assert header["positions"]["offset"] + 8 * n <= header["colors"]["offset"]
    assert header["frame_offsets"] == list(np.cumsum([0] + header["points_per_frame"][:-1]))
    assert header["cameras"] is None
    lo, hi = header["depth_range"]
    assert 0 < lo < hi <= 4.5  # the wall of the demo scene is 4 units away


def test_float_colours_are_rounded_to_uint8(tmp_path):
    pts = np.zeros((1, 1, 3, 3), np.float32) + [[[[0, 0, 1], [1, 0, 1], [2, 0, 1]]]]
    cols = np.array([[[[0.0, 0.5, 1.0], [0.2, 0.4, 0.6], [1.0, 1.0, 1.0]]]], np.float32)
    write_preview_payload(tmp_path / "c.o4dp", pts, cols)
    data = read_preview_payload(tmp_path / "c.o4dp")
    got = {tuple(p): tuple(c) for p, c in zip(data["points"][0].tolist(), data["colors"][0].tolist())}
    assert got[(0.0, 0.0, 1.0)] == (0, 128, 255)
    assert got[(1.0, 0.0, 1.0)] == (51, 102, 153)


def test_budget_subsamples_deterministically_and_prefixes_are_subsamples(tmp_path, scene):
    args = (scene["points"], scene["colors"], scene["valid"])
    small = write_preview_payload(tmp_path / "a.o4dp", *args, max_points_per_frame=100)
    again = write_preview_payload(tmp_path / "b.o4dp", *args, max_points_per_frame=100)
    full = write_preview_payload(tmp_path / "c.o4dp", *args, max_points_per_frame=10**9)
    assert small["points_per_frame"] == [100] * 5
    assert (tmp_path / "a.o4dp").read_bytes() == (tmp_path / "b.o4dp").read_bytes()
    a, c = read_preview_payload(tmp_path / "a.o4dp"), read_preview_payload(tmp_path / "c.o4dp")
    for t in range(5):
        # the budgeted frame is the first points of the full frame: the widget's own budget relies on it
        np.testing.assert_array_equal(a["points"][t], c["points"][t][:100])
        # and the order is shuffled: not the raster order of the pixels
        ys = c["points"][t][:, 1]
        assert not np.all(np.diff(ys) >= 0)
    assert again["bbox"] == small["bbox"]
    assert full["total_points"] == int(scene["valid"].sum())


def test_spread_of_a_budgeted_frame_covers_the_image(tmp_path, scene):
    write_preview_payload(tmp_path / "a.o4dp", scene["points"], scene["colors"], max_points_per_frame=200)
    pts = read_preview_payload(tmp_path / "a.o4dp")["points"][0]
    full = scene["points"][0].reshape(-1, 3)
    # a uniform subsample spans (nearly) the whole x and y range of the frame
    for axis in (0, 1):
        span = full[:, axis].max() - full[:, axis].min()
        assert pts[:, axis].max() - pts[:, axis].min() > 0.8 * span


def test_non_finite_and_overflowing_points_are_dropped_and_counted(tmp_path):
    pts = np.ones((2, 2, 2, 3), np.float32)
    pts[0, 0, 0] = np.nan
    pts[0, 0, 1, 2] = np.inf
    pts[1, 1, 1, 0] = 1e6  # beyond float16
    valid = np.ones((2, 2, 2), bool)
    valid[1, 0, 0] = False  # masked out on purpose: not counted as dropped
    meta = write_preview_payload(tmp_path / "d.o4dp", pts, np.zeros_like(pts), valid)
    assert meta["points_per_frame"] == [2, 2]
    assert meta["dropped_points"] == 3
    data = read_preview_payload(tmp_path / "d.o4dp")
    assert all(np.isfinite(p).all() for p in data["points"])


def test_single_intrinsics_and_3x4_poses_are_accepted(tmp_path, scene):
    K = scene["K"][0]
    c2w = scene["c2w"][:, :3, :]
    write_preview_payload(tmp_path / "e.o4dp", scene["points"], scene["colors"], None, K, c2w)
    data = read_preview_payload(tmp_path / "e.o4dp")
    np.testing.assert_allclose(data["K"], scene["K"])
    np.testing.assert_allclose(data["c2w"], scene["c2w"])


def test_torch_tensors_are_accepted(tmp_path, scene):
    """Tensors (here needing grad, as a model output would, which numpy refuses) write the same file as
    the numpy arrays they hold; float colours in [0, 1] land on the same bytes as the uint8 ones."""
    valid = scene["valid"].copy()
    valid[:, :3] = False  # a mask that really drops points
    points = torch.from_numpy(scene["points"]).requires_grad_(True)
    colors = torch.from_numpy(scene["colors"].astype(np.float32) / 255)
    meta = write_preview_payload(tmp_path / "t.o4dp", points, colors, torch.from_numpy(valid),
                                 torch.from_numpy(scene["K"]), torch.from_numpy(scene["c2w"]))
    write_preview_payload(tmp_path / "n.o4dp", scene["points"], scene["colors"], valid, scene["K"], scene["c2w"])
    assert meta["total_points"] == int(valid.sum()) < scene["valid"].size
    assert (tmp_path / "t.o4dp").read_bytes() == (tmp_path / "n.o4dp").read_bytes()


def test_write_is_atomic_and_overwrites(tmp_path, scene):
    path = tmp_path / "f.o4dp"
    path.write_bytes(b"old")
    write_preview_payload(path, scene["points"], scene["colors"])
    assert path.read_bytes()[:4] == MAGIC
    assert sorted(os.listdir(tmp_path)) == ["f.o4dp"]  # no temporary file left behind
    with pytest.raises(One4DInputError):
        write_preview_payload(path, scene["points"][:, :, :, :2], scene["colors"])
    assert path.read_bytes()[:4] == MAGIC and sorted(os.listdir(tmp_path)) == ["f.o4dp"]


def _bad_cases(scene):
    p, c = scene["points"], scene["colors"]
    F, H, W, _ = p.shape
    bad_c = c.astype(np.float32)  # 0-255 floats
    nan_c = (c / 255.0).astype(np.float32)
    nan_c[0, 0, 0, 0] = np.nan
    nan_k = scene["K"].copy()
    nan_k[0, 0, 0] = -1
    nan_pose = scene["c2w"].copy()
    nan_pose[1, 0, 3] = np.nan
    return {
        "points 3d": (dict(points=p[0], colors=c), "points"),
        "points xyzw": (dict(points=np.concatenate([p, p[..., :1]], -1), colors=c), "points"),
        "points strings": (dict(points=np.full((1, 1, 1, 3), "a"), colors=c[:1, :1, :1]), "points"),
        "colors shape": (dict(points=p, colors=c[:, ::2]), "colors"),
        "colors 0-255 floats": (dict(points=p, colors=bad_c), "colors"),
        "colors nan": (dict(points=p, colors=nan_c), "colors"),
        "colors int16": (dict(points=p, colors=c.astype(np.int16)), "colors"),
        "valid shape": (dict(points=p, colors=c, valid=np.ones((F, H), bool)), "valid"),
        "valid none left": (dict(points=p, colors=c, valid=np.zeros((F, H, W), bool)), "valid"),
        "K shape": (dict(points=p, colors=c, K=np.eye(4)), "K"),
        "K focal": (dict(points=p, colors=c, K=nan_k), "K"),
        "c2w shape": (dict(points=p, colors=c, c2w=np.eye(4)), "c2w"),
        "c2w nan": (dict(points=p, colors=c, c2w=nan_pose), "c2w"),
        "budget zero": (dict(points=p, colors=c, max_points_per_frame=0), "max_points_per_frame"),
        "budget float": (dict(points=p, colors=c, max_points_per_frame=1.5), "max_points_per_frame"),
        "budget bool": (dict(points=p, colors=c, max_points_per_frame=True), "max_points_per_frame"),
        "fps zero": (dict(points=p, colors=c, fps=0), "fps"),
        "fps nan": (dict(points=p, colors=c, fps=float("nan")), "fps"),
    }


@pytest.mark.parametrize("case", list(_bad_cases(make_demo_scene(frames=2, height=8, width=8))))
def test_bad_input_names_the_input(tmp_path, case):
    kwargs, name = _bad_cases(make_demo_scene(frames=2, height=8, width=8))[case]
    with pytest.raises(One4DInputError) as info:
        write_preview_payload(tmp_path / "x.o4dp", **kwargs)
    assert name in str(info.value).split(":")[0]
    assert not os.listdir(tmp_path)


def test_missing_folder_is_reported(tmp_path, scene):
    with pytest.raises(One4DInputError, match="does not exist"):
        write_preview_payload(tmp_path / "nope" / "x.o4dp", scene["points"], scene["colors"])


@pytest.mark.parametrize("content, message", [
    (b"", "too short"),
    (b"PK\x03\x04" + bytes(40), "not a One4D preview payload"),
    (MAGIC + struct.pack("<III", 99, 0, 0), "version 99"),
    (MAGIC + struct.pack("<III", 1, 1000, 0) + b"{}", "truncated"),
])
def test_reader_rejects_other_files(tmp_path, content, message):
    path = tmp_path / "bad.o4dp"
    path.write_bytes(content)
    with pytest.raises(One4DInputError, match=message):
        read_preview_payload(path)


def test_reader_rejects_truncated_data(tmp_path, scene):
    path = tmp_path / "cut.o4dp"
    write_preview_payload(path, scene["points"], scene["colors"])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(One4DInputError, match="truncated"):
        read_preview_payload(path)
