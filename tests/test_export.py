"""Exported files open in independent readers with the right counts, colors and camera conventions."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import plyfile
import pygltflib
import pytest
import trimesh

from one4d.errors import One4DInputError
from one4d.export import (
    export_cameras_json,
    export_colmap,
    export_depth_exr,
    export_depth_png,
    export_depth_pngs,
    export_glb,
    export_npz,
    export_ply,
    export_ply_frames,
    exr_available,
    load_npz,
    read_depth_png,
)
from one4d.export.atomic import atomic_path
from one4d.geometry import make_sequence

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scene():
    return make_sequence(frames=3, height=24, width=40, focal=0.8, path="orbit", seed=5)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if ".tmp-" in p.name]


def test_merged_ply_reads_back_with_plyfile_and_trimesh(scene, tmp_path):
    valid = np.ones(scene.depth.shape, bool)
    valid[1, :5] = False
    path = export_ply(tmp_path / "cloud.ply", scene.points, scene.colors, valid)
    ply = plyfile.PlyData.read(str(path))
    v = ply["vertex"].data
    assert len(v) == valid.sum()
    assert v.dtype["x"] == np.dtype("<f4") and v.dtype["red"] == np.dtype("u1") and len(v.dtype) == 6
    xyz = np.stack([v["x"], v["y"], v["z"]], -1)
    rgb = np.stack([v["red"], v["green"], v["blue"]], -1)
    assert np.array_equal(xyz, scene.points[valid]) and np.array_equal(rgb, scene.colors[valid])
    assert any("OpenCV" in c for c in ply.comments)
    cloud = trimesh.load(str(path))
    assert len(cloud.vertices) == valid.sum()
    assert np.array_equal(np.asarray(cloud.colors)[:, :3], scene.colors[valid])
    assert no_temp_files(tmp_path)


def test_float_colors_and_per_frame_files(scene, tmp_path):
    valid = np.ones(scene.depth.shape, bool)
    valid[2] = False
    valid[2, 0, 0] = True
    paths = export_ply_frames(tmp_path / "frames", scene.points, scene.colors / 255.0, valid)
    assert [p.name for p in paths] == ["frame_00000.ply", "frame_00001.ply", "frame_00002.ply"]
    counts = [len(plyfile.PlyData.read(str(p))["vertex"].data) for p in paths]
    assert counts == [24 * 40, 24 * 40, 1]
    last = plyfile.PlyData.read(str(paths[2]))["vertex"].data[0]
    assert (last["red"], last["green"], last["blue"]) == tuple(scene.colors[2, 0, 0])


def test_voxel_budget_keeps_real_points(tmp_path):
    rng = np.random.default_rng(0)
    pts = rng.random((20000, 3)).astype(np.float32)
    pts[:, 2] = 0.1 * np.sin(6 * pts[:, 0])  # a surface
    cols = rng.integers(0, 255, (20000, 3), dtype=np.uint8)
    path = export_ply(tmp_path / "budget.ply", pts, cols, max_points=3000)
    v = plyfile.PlyData.read(str(path))["vertex"].data
    assert 1500 <= len(v) <= 3000
    xyz = np.stack([v["x"], v["y"], v["z"]], -1)
    lookup = {tuple(p): tuple(c) for p, c in zip(pts.tolist(), cols.tolist())}
    assert all(lookup[tuple(p)] == (r, g, b) for p, r, g, b in zip(xyz.tolist(), v["red"], v["green"], v["blue"]))
    fixed = plyfile.PlyData.read(str(export_ply(tmp_path / "voxel.ply", pts, cols, voxel_size=0.1)))["vertex"].data
    assert len(fixed) <= 10 * 10 * 3


def test_glb_reads_back_in_gltf_axes(scene, tmp_path):
    path = export_glb(tmp_path / "cloud.glb", scene.points, scene.colors)
    g = pygltflib.GLTF2().load(str(path))
    prim = g.meshes[0].primitives[0]
    assert prim.mode == pygltflib.POINTS
    blob = g.binary_blob()

    def read(accessor_index, dtype, width):
        acc = g.accessors[accessor_index]
        view = g.bufferViews[acc.bufferView]
        start = (view.byteOffset or 0) + (acc.byteOffset or 0)
        return np.frombuffer(blob, dtype, acc.count * width, start).reshape(acc.count, width), acc

    pos, acc = read(prim.attributes.POSITION, np.float32, 3)
    col, cacc = read(prim.attributes.COLOR_0, np.uint8, 4)
    n = scene.points[..., 0].size
    assert acc.count == n and cacc.normalized
    expected = scene.points.reshape(-1, 3) * np.array([1, -1, -1], np.float32)  # OpenCV -> glTF (y up)
    assert np.allclose(np.sort(pos, axis=0), np.sort(expected, axis=0))
    order = np.lexsort(pos.T)
    order_e = np.lexsort(expected.T)
    assert np.array_equal(col[order, :3], scene.colors.reshape(-1, 3)[order_e])
    assert (col[:, 3] == 255).all()
    loaded = trimesh.load(str(path))
    assert sum(len(geom.vertices) for geom in loaded.geometry.values()) == n
    small = export_glb(tmp_path / "small.glb", scene.points, scene.colors, max_points=500, axes="opencv")
    assert pygltflib.GLTF2().load(str(small)).accessors[0].count <= 500


def test_npz_bundle_loads_with_plain_numpy(scene, tmp_path):
    valid = scene.depth > 2.0
    norm = {"center": np.array([0.1, 0.2, 3.0]), "scale": 2.5, "method": "robust extent"}
    path = export_npz(tmp_path / "scene.npz", scene.points, scene.colors, scene.depth, valid, scene.K, scene.c2w, norm)
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"points", "colors", "depth", "valid", "K", "c2w", "normalization_json", "convention"}
        assert np.array_equal(z["points"], scene.points) and z["colors"].dtype == np.uint8
        assert np.array_equal(z["valid"], valid) and np.allclose(z["K"], scene.K) and np.allclose(z["c2w"], scene.c2w)
        assert json.loads(str(z["normalization_json"])) == {"center": [0.1, 0.2, 3.0], "scale": 2.5, "method": "robust extent"}
        assert "OpenCV" in str(z["convention"])
    assert load_npz(path)["normalization"]["scale"] == 2.5
    no_ext = export_npz(tmp_path / "bare", scene.points)
    assert no_ext.name == "bare.npz" and no_ext.exists()


def png_text_chunks(path: Path) -> dict:
    """Minimal PNG chunk walk, written for the test."""
    data = path.read_bytes()
    out, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"tEXt":
            key, _, value = data[pos + 8 : pos + 8 + length].partition(b"\x00")
            out[key.decode()] = value.decode("latin-1")
        pos += 12 + length
    return out


def test_depth_png_sequence_with_scale(scene, tmp_path):
    valid = np.ones(scene.depth.shape, bool)
    valid[:, 0, 0] = False
    paths, scale = export_depth_pngs(tmp_path / "depth", scene.depth, valid)
    side = json.loads((tmp_path / "depth" / "depth_scale.json").read_text())
    assert side["depth_scale"] == scale and side["invalid_value"] == 0
    for i, p in enumerate(paths):
        codes = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert codes.dtype == np.uint16 and codes.shape == (24, 40)
        assert codes[0, 0] == 0 and (codes[valid[i]] > 0).all()
        meta = json.loads(png_text_chunks(p)["one4d"])
        assert meta["depth_scale"] == scale
        assert np.abs(codes[valid[i]] * scale - scene.depth[i][valid[i]]).max() <= scale / 2 + 1e-7
    assert codes.max() <= 65000
    depth, ok = read_depth_png(paths[1])
    assert np.array_equal(ok, valid[1]) and np.abs(depth - scene.depth[1])[ok].max() <= scale


def test_single_depth_png_with_fixed_scale(tmp_path):
    d = np.array([[1.0, 2.5], [np.nan, 0.0]], np.float32)
    s = export_depth_png(tmp_path / "d.png", d, scale=0.001)
    codes = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert s == 0.001 and codes.tolist() == [[1000, 2500], [0, 0]]
    assert json.loads((tmp_path / "d.json").read_text())["depth_scale"] == 0.001
    with pytest.raises(One4DInputError, match="16 bits"):
        export_depth_png(tmp_path / "e.png", d * 100, scale=0.001)
    assert not (tmp_path / "e.png").exists() and no_temp_files(tmp_path)


def test_exr_written_or_cleanly_skipped(tmp_path):
    d = np.linspace(1, 5, 24 * 40, dtype=np.float32).reshape(24, 40)
    if exr_available():
        path = export_depth_exr(tmp_path / "d.exr", d)
        back = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert back.dtype == np.float32 and np.allclose(back, d)
    else:
        with pytest.warns(RuntimeWarning, match="OPENCV_IO_ENABLE_OPENEXR"):
            assert export_depth_exr(tmp_path / "d.exr", d) is None
        assert list(tmp_path.iterdir()) == []


def test_exr_with_the_environment_switch_in_a_fresh_process(tmp_path):
    code = (
        "import sys, numpy as np, cv2\n"
        "from one4d.export import export_depth_exr, exr_available\n"
        "try:\n    native = cv2.imencode('.exr', np.ones((2, 2), np.float32))[0]\n"
        "except cv2.error:\n    native = False\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "p = export_depth_exr(sys.argv[1], np.full((4, 4), 2.0, np.float32))\n"
        "ok = p is not None and np.allclose(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), 2.0)\n"
        "print(bool(native), exr_available(), p is not None, ok)\n"
    )
    env = dict(os.environ, OPENCV_IO_ENABLE_OPENEXR="1", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.exr")], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    native, available, written, ok = (s == "True" for s in out)
    assert available == native  # our probe agrees with OpenCV itself
    assert written == native and ok == native  # written exactly when OpenCV can, and then readable
    assert (tmp_path / "x.exr").exists() == native


def test_cameras_json_conventions_reproject_a_known_point(scene, tmp_path):
    path = export_cameras_json(tmp_path / "cams.json", scene.K, scene.c2w, 40, 24)
    doc = json.loads(path.read_text())
    assert doc["width"] == 40 and "OpenCV" in doc["convention"]["world"] and len(doc["frames"]) == 3
    i, u, v = 2, 31, 7
    X = scene.points[i, v, u].astype(np.float64)
    d = float(scene.depth[i, v, u])
    cam = doc["frames"][i]
    K = np.array(cam["K"])
    # OpenCV: world-to-camera, z forward, y down
    Xc = np.array(cam["w2c_opencv"]) @ np.append(X, 1.0)
    assert Xc[2] == pytest.approx(d, rel=1e-4)
    assert K[0, 0] * Xc[0] / Xc[2] + K[0, 2] == pytest.approx(u, abs=1e-3)
    assert K[1, 1] * Xc[1] / Xc[2] + K[1, 2] == pytest.approx(v, abs=1e-3)
    # OpenGL camera axes in the same world: looking down -z, y up
    Xg = np.linalg.inv(np.array(cam["c2w_opengl"])) @ np.append(X, 1.0)
    assert Xg[2] == pytest.approx(-d, rel=1e-4)
    assert cam["cx"] + cam["fx"] * Xg[0] / -Xg[2] == pytest.approx(u, abs=1e-3)
    assert cam["cy"] - cam["fy"] * Xg[1] / -Xg[2] == pytest.approx(v, abs=1e-3)
    # glTF world of the GLB export (x, -y, -z) with OpenGL camera axes gives the same camera-space point
    Xt = np.linalg.inv(np.array(cam["c2w_gltf"])) @ np.append(X * [1, -1, -1], 1.0)
    assert np.allclose(Xt, Xg, atol=1e-6)
    # Blender: the camera's local (0, 0, -d) is the world point in Blender's Z-up axes (x, z, -y)
    on_axis = scene.c2w[i].astype(np.float64) @ np.array([0.0, 0.0, d, 1.0])
    blender_point = np.array(cam["blender_matrix_world"]) @ np.array([0.0, 0.0, -d, 1.0])
    assert np.allclose(blender_point[:3], [on_axis[0], on_axis[2], -on_axis[1]], atol=1e-6)
    assert np.degrees(2 * np.arctan(18.0 / cam["blender_lens_mm"])) == pytest.approx(cam["fov_x_deg"])
    assert cam["blender_shift_x"] == pytest.approx(0.0) and cam["blender_shift_y"] == pytest.approx(0.0)


def quat_to_matrix(q):
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_colmap_model_reprojects_a_known_point(scene, tmp_path):
    paths = export_colmap(tmp_path / "sparse", scene.K, scene.c2w, 40, 24, scene.points, scene.colors, max_points=None)
    cams = [l.split() for l in paths[0].read_text().splitlines() if l and not l.startswith("#")]
    assert len(cams) == 1 and cams[0][1] == "PINHOLE" and cams[0][2:4] == ["40", "24"]
    fx, fy, cx, cy = map(float, cams[0][4:])
    lines = [l for l in paths[1].read_text().splitlines() if not l.startswith("#")]
    images = [l.split() for l in lines[0::2]]
    assert len(images) == 3 and all(l == "" for l in lines[1::2])
    i, u, v = 1, 5, 20
    X = scene.points[i, v, u].astype(np.float64)
    qw, qx, qy, qz, tx, ty, tz = map(float, images[i][1:8])
    assert images[i][9] == "frame_00001.png" and qw >= 0
    R = quat_to_matrix([qw, qx, qy, qz])
    Xc = R @ X + [tx, ty, tz]
    # COLMAP pixel centers are at +0.5 relative to OpenCV's integer centers
    assert fx * Xc[0] / Xc[2] + cx == pytest.approx(u + 0.5, abs=1e-3)
    assert fy * Xc[1] / Xc[2] + cy == pytest.approx(v + 0.5, abs=1e-3)
    pts = [l.split() for l in paths[2].read_text().splitlines() if l and not l.startswith("#")]
    assert len(pts) == scene.points[..., 0].size
    first = pts[0]
    assert np.allclose(list(map(float, first[1:4])), scene.points[0, 0, 0], atol=1e-5)
    assert tuple(map(int, first[4:7])) == tuple(scene.colors[0, 0, 0]) and first[7] == "0"
    # per-frame intrinsics give one camera per image
    K2 = scene.K.copy()
    K2[1, 0, 0] *= 1.1
    export_colmap(tmp_path / "zoom", K2, scene.c2w, 40, 24)
    assert len([l for l in (tmp_path / "zoom" / "cameras.txt").read_text().splitlines() if not l.startswith("#")]) == 3


def test_failed_writes_leave_no_partial_files(scene, tmp_path, monkeypatch):
    target = tmp_path / "keep.ply"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"

    def broken(*args, **kwargs):
        raise OSError("simulated failure")

    monkeypatch.setattr(trimesh.PointCloud, "export", broken)
    with pytest.raises(OSError):
        export_glb(tmp_path / "x.glb", scene.points, scene.colors)
    assert not (tmp_path / "x.glb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ply"]


def test_bad_inputs_raise_clear_errors(scene, tmp_path):
    with pytest.raises(One4DInputError, match="no finite valid point"):
        export_ply(tmp_path / "a.ply", np.full((2, 4, 4, 3), np.nan, np.float32))
    with pytest.raises(One4DInputError, match="colors"):
        export_ply(tmp_path / "a.ply", scene.points, scene.colors[:, :5])
    with pytest.raises(One4DInputError, match=r"\.ply"):
        export_ply(tmp_path / "a.txt", scene.points)
    with pytest.raises(One4DInputError, match="width"):
        export_cameras_json(tmp_path / "c.json", scene.K, scene.c2w, 40.5, 24)
    with pytest.raises(One4DInputError, match="c2w"):
        export_colmap(tmp_path / "m", scene.K, scene.c2w[:, :2], 40, 24)
    with pytest.raises(One4DInputError, match="without spaces"):
        export_colmap(tmp_path / "m", scene.K, scene.c2w, 40, 24, image_names=["a b", "c", "d"])
    with pytest.raises(One4DInputError, match="expected"):
        export_depth_pngs(tmp_path / "d", scene.depth[0])
    assert not list(tmp_path.glob("*.ply")) and no_temp_files(tmp_path)
