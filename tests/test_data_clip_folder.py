"""The clip folder format (one4d/data/clips.py): every depth encoding and unit, RGB frames or an MP4, masks, pose
conventions, and a clear error for each kind of broken folder."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from clip_factory import intrinsics, plane_cameras, plane_depth, plane_distance, random_rgb
from one4d.data.clips import OPENGL_TO_OPENCV, read_clip_folder
from one4d.errors import One4DInputError
from one4d.export.depth import exr_available
from one4d.geometry.projection import unproject_depth

F, H, W = 3, 16, 24


def write_folder(root, fmt="npy", units="m", scale=None, video=False, meta=None, mask=None, caption="a tilted wall"):
    """A clip folder of the plane scene: depth as ``fmt`` in ``units`` (times 1 / ``scale`` for PNG codes)."""
    K, c2w = intrinsics(H, W), plane_cameras(F)
    depth = plane_depth(K, c2w, H, W)
    rgb = random_rgb(F, H, W)
    (root / "depth").mkdir(parents=True)
    stored = depth / {"m": 1.0, "cm": 0.01, "mm": 0.001}.get(units, 1.0)
    for i in range(F):
        name = f"frame_{i:04d}"
        if fmt == "png":
            assert cv2.imwrite(str(root / "depth" / f"{name}.png"), np.rint(stored[i] / scale).astype(np.uint16))
        elif fmt == "exr":
            assert cv2.imwrite(str(root / "depth" / f"{name}.exr"), stored[i].astype(np.float32))
        else:
            np.save(root / "depth" / f"{name}.npy", stored[i].astype(np.float32))
        if not video:
            (root / "rgb").mkdir(exist_ok=True)
            assert cv2.imwrite(str(root / "rgb" / f"{name}.png"), rgb[i][..., ::-1])
        if mask is not None:
            (root / "mask").mkdir(exist_ok=True)
            assert cv2.imwrite(str(root / "mask" / f"{name}.png"), mask[i].astype(np.uint8) * 255)
    if video:
        writer = cv2.VideoWriter(str(root / "rgb.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (W, H))
        for frame in rgb:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
        writer.release()
    info = {"caption": caption, "depth_units": units, "K": K.tolist(), "c2w": c2w.tolist()}
    if scale is not None:
        info["depth_scale"] = scale
    info.update(meta or {})
    (root / "clip.json").write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    return rgb, depth, K, c2w


def check_geometry(record, depth, K, c2w, tol):
    """Depth in metres, cameras as written, and lifted points on the plane (in metres)."""
    np.testing.assert_allclose(record.depth, depth, rtol=tol)
    np.testing.assert_allclose(record.K, np.broadcast_to(K, (F, 3, 3)))
    np.testing.assert_allclose(record.c2w, c2w, atol=1e-12)
    points = unproject_depth(record.depth, record.K, record.c2w)
    assert np.abs(plane_distance(points)).max() < 6 * tol


@pytest.mark.parametrize("fmt, units, scale, tol", [
    ("npy", "m", None, 1e-6),
    ("npy", "cm", None, 1e-6),
    ("png", "mm", 1.0, 2e-4),  # millimetre codes
    ("png", "m", 2e-4, 3e-5),  # 0.2 mm codes
])
def test_depth_encodings_and_units_give_metres(tmp_path, fmt, units, scale, tol):
    rgb, depth, K, c2w = write_folder(tmp_path, fmt, units, scale)
    seq = read_clip_folder(tmp_path)
    record = seq.read()
    assert len(seq) == F and record.valid.all() and record.caption == "a tilted wall"
    assert record.source == f"folder/{tmp_path.name}"
    np.testing.assert_array_equal(record.rgb, rgb)
    check_geometry(record, depth, K, c2w, tol)
    np.testing.assert_array_equal(seq.read([2, 0]).frames, [2, 0])
    np.testing.assert_allclose(seq.read([2, 0]).depth, record.depth[[2, 0]])


@pytest.mark.skipif(not exr_available(), reason="this OpenCV cannot write EXR")
def test_exr_depth(tmp_path):
    _, depth, K, c2w = write_folder(tmp_path, "exr", "m")
    check_geometry(read_clip_folder(tmp_path).read(), depth, K, c2w, 1e-6)


@pytest.mark.skipif(exr_available(), reason="this OpenCV reads EXR")
def test_exr_without_opencv_support_names_the_file_and_the_switch(tmp_path):
    write_folder(tmp_path, "npy", "m")
    for p in (tmp_path / "depth").iterdir():
        p.rename(p.with_suffix(".exr"))
    seq = read_clip_folder(tmp_path)
    with pytest.raises(One4DInputError, match=r"frame_0000\.exr.*OPENCV_IO_ENABLE_OPENEXR=1.*\.npy"):
        seq.read()


def test_mp4_frames(tmp_path):
    rgb, depth, K, c2w = write_folder(tmp_path, video=True)
    seq = read_clip_folder(tmp_path)
    record = seq.read([1, 2])
    assert record.rgb.shape == (2, H, W, 3) and record.rgb.dtype == np.uint8
    # lossy video: the frames come back close to what was written, each nearer its own frame than the others
    errors = [[np.abs(record.rgb[i].astype(int) - rgb[j]).mean() for j in range(F)] for i in range(2)]
    assert np.argmin(errors[0]) == 1 and np.argmin(errors[1]) == 2
    check_geometry(seq.read(), depth, K, c2w, 1e-6)


def test_mask_and_invalid_depth_are_invalid(tmp_path):
    mask = np.ones((F, H, W), bool)
    mask[1, :4, :5] = False  # e.g. sky
    write_folder(tmp_path, mask=mask)
    np.save(tmp_path / "depth" / "frame_0002.npy", np.zeros((H, W), np.float32))
    record = read_clip_folder(tmp_path).read()
    assert not record.valid[1, :4, :5].any() and record.valid[1].sum() == H * W - 20
    assert not record.valid[2].any() and (record.depth[2] == 0).all() and record.valid[0].all()


def test_opengl_poses_are_converted_to_opencv(tmp_path):
    c2w = plane_cameras(F)
    write_folder(tmp_path, meta={"pose_convention": "opengl", "c2w": (c2w @ OPENGL_TO_OPENCV).tolist()})
    record = read_clip_folder(tmp_path).read()
    np.testing.assert_allclose(record.c2w, c2w, atol=1e-12)
    # an OpenGL camera looks down its -z: after conversion the camera's +z (forward) is the same direction
    np.testing.assert_allclose(record.c2w[:, :3, 2], -(c2w @ OPENGL_TO_OPENCV)[:, :3, 2])


def test_caption_from_caption_txt(tmp_path):
    write_folder(tmp_path, caption=None)
    (tmp_path / "caption.txt").write_text("a wall seen from a moving camera\n")
    assert read_clip_folder(tmp_path).caption == "a wall seen from a moving camera"


def _broken(tmp_path, change):
    write_folder(tmp_path)
    change(tmp_path)
    with pytest.raises(One4DInputError) as err:
        read_clip_folder(tmp_path).read()
    return str(err.value)


def _edit_meta(root, **changes):
    meta = json.loads((root / "clip.json").read_text())
    meta.update(changes)
    (root / "clip.json").write_text(json.dumps(meta))


def test_missing_depth_file_is_named_with_the_fix(tmp_path):
    msg = _broken(tmp_path, lambda r: (r / "depth" / "frame_0001.npy").unlink())
    assert "frame_0001.npy" in msg and "frame_0001.png" in msg and "write it, or remove the frame" in msg


def test_extra_depth_file_is_counted(tmp_path):
    msg = _broken(tmp_path, lambda r: np.save(r / "depth" / "frame_0009.npy", np.ones((H, W), np.float32)))
    assert "4 depth files for 3 frames" in msg and "remove depth files without a frame" in msg


def test_wrong_pose_count(tmp_path):
    msg = _broken(tmp_path, lambda r: _edit_meta(r, c2w=plane_cameras(F + 1).tolist()))
    assert "clip.json" in msg and "4 poses for 3 frames" in msg and "one camera-to-world matrix per frame" in msg


def test_wrong_intrinsics_count(tmp_path):
    msg = _broken(tmp_path, lambda r: _edit_meta(r, K=[intrinsics(H, W).tolist()] * 2))
    assert "clip.json" in msg and "[3, 3, 3]" in msg


def test_unknown_units(tmp_path):
    msg = _broken(tmp_path, lambda r: _edit_meta(r, depth_units="inch"))
    assert "clip.json" in msg and "'inch'" in msg and "'m', 'cm', 'mm'" in msg


def test_png_without_scale(tmp_path):
    def to_png(root):
        for p in sorted((root / "depth").iterdir()):
            cv2.imwrite(str(p.with_suffix(".png")), np.ones((H, W), np.uint16))
            p.unlink()
    msg = _broken(tmp_path, to_png)
    assert "frame_0000.png" in msg and "depth_scale" in msg


def test_eight_bit_png_depth(tmp_path):
    def to_png(root):
        _edit_meta(root, depth_scale=1.0)
        for p in sorted((root / "depth").iterdir()):
            cv2.imwrite(str(p.with_suffix(".png")), np.ones((H, W), np.uint8))
            p.unlink()
    assert "16-bit" in _broken(tmp_path, to_png)


def test_not_rigid_pose(tmp_path):
    c2w = plane_cameras(F)
    c2w[1, :3, :3] *= 2.0
    assert "pose 1 is not a rigid right-handed transform" in _broken(tmp_path, lambda r: _edit_meta(r, c2w=c2w.tolist()))


def test_missing_caption_and_clip_json(tmp_path):
    assert "has no caption" in _broken(tmp_path / "a", _drop_caption)
    assert "no clip.json" in _broken(tmp_path / "b", lambda r: (r / "clip.json").unlink())


def _drop_caption(root):
    meta = json.loads((root / "clip.json").read_text())
    meta.pop("caption")
    (root / "clip.json").write_text(json.dumps(meta))


def test_video_with_wrong_depth_count(tmp_path):
    write_folder(tmp_path, video=True)
    (tmp_path / "depth" / "frame_0002.npy").unlink()
    with pytest.raises(One4DInputError, match=r"rgb\.mp4: 2 depth files for 3 frames"):
        read_clip_folder(tmp_path)


def test_depth_size_differs_from_frames(tmp_path):
    msg = _broken(tmp_path, lambda r: np.save(r / "depth" / "frame_0000.npy", np.ones((H, W + 1), np.float32)))
    assert "frame_0000.npy" in msg and "pixel-aligned" in msg
