"""Dataset readers (one4d/data/datasets/): tiny samples written here in each dataset's exact on-disk layout, from a
known plane and known OpenCV cameras converted to the dataset's own conventions; the readers must give back metric
depth, the intrinsics and the OpenCV camera-to-world poses, and mask invalid depth and sky."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from clip_factory import intrinsics, plane_cameras, plane_depth, plane_distance, random_rgb, to_world
from one4d.data.clip_sampling import ClipSpec, sample_clip
from one4d.data.datasets import find_sequences, open_sequence, read_pointodyssey, read_tartanair, read_vkitti2
from one4d.errors import One4DInputError
from one4d.geometry.projection import project_points, unproject_depth

F, H, W = 3, 16, 24


def per_frame_K(frames: int = F) -> np.ndarray:
    """Slightly different intrinsics per frame (a zoom), so per-frame reading is checked."""
    return np.stack([intrinsics(H, W, focal=20.0 + i) for i in range(frames)])


def write_image(path, img) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else img)


def quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method)."""
    t = np.trace(R)
    if t > 0:
        s = 2.0 * np.sqrt(1.0 + t)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    else:
        i = int(np.argmax(np.diag(R)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = [0.0, 0.0, 0.0, (R[k, j] - R[j, k]) / s]
        q[i], q[j], q[k] = s / 4, (R[j, i] + R[i, j]) / s, (R[k, i] + R[i, k]) / s
    return np.array(q)


# --- PointOdyssey: rgbs/rgb_XXXXX.jpg, depths/depth_XXXXX.png (code / 65535 * 1000 m), anno.npz (K, world-to-camera)

def write_pointodyssey(folder, c2w=None, K=None):
    K = per_frame_K() if K is None else K
    c2w = plane_cameras(F) if c2w is None else c2w
    depth = plane_depth(K, c2w, H, W)
    for i, img in enumerate(random_rgb(F, H, W)):
        write_image(folder / "rgbs" / f"rgb_{i:05d}.jpg", img)
        write_image(folder / "depths" / f"depth_{i:05d}.png", np.rint(depth[i] / 1000 * 65535).astype(np.uint16))
    # point tracks as the dataset stores them: world points and their pixels through K and the extrinsics
    trajs_3d = np.broadcast_to([[0.3, -0.2, 5.2], [-0.5, 0.4, 4.8]], (F, 2, 3))
    w2c = np.linalg.inv(c2w)
    cam = np.einsum("fij,fnj->fni", w2c[:, :3, :3], trajs_3d) + w2c[:, None, :3, 3]
    pix = np.einsum("fij,fnj->fni", K, cam)
    np.savez(folder / "anno.npz", intrinsics=K.astype(np.float32), extrinsics=w2c.astype(np.float32),
             trajs_3d=trajs_3d.astype(np.float32), trajs_2d=(pix[..., :2] / pix[..., 2:]).astype(np.float32),
             visibs=np.ones((F, 2), bool), valids=np.ones((F, 2), bool))
    return depth, K, c2w


def test_pointodyssey(tmp_path):
    folder = tmp_path / "train" / "dancing"
    depth, K, c2w = write_pointodyssey(folder)
    codes = cv2.imread(str(folder / "depths" / "depth_00001.png"), cv2.IMREAD_UNCHANGED)
    codes[:3, :4], codes[5, 5] = 65535, 0  # saturated (sky) and missing
    cv2.imwrite(str(folder / "depths" / "depth_00001.png"), codes)
    seq = read_pointodyssey(folder)
    record = seq.read()
    assert seq.source == "pointodyssey/train/dancing" and record.caption == ""
    ok = record.valid
    assert not ok[1, :3, :4].any() and not ok[1, 5, 5] and ok.sum() == F * H * W - 13
    np.testing.assert_allclose(record.depth[ok], depth[ok], atol=1000 / 65535 / 2 + 1e-4)
    np.testing.assert_allclose(record.K, K, rtol=1e-6)
    np.testing.assert_allclose(record.c2w, c2w, atol=1e-5)
    # the dataset's own point tracks project through the converted cameras onto their stored pixels
    with np.load(folder / "anno.npz") as anno:
        for i in range(F):
            uv, z = project_points(anno["trajs_3d"][i], record.K[i], record.c2w[i])
            np.testing.assert_allclose(uv, anno["trajs_2d"][i], atol=1e-3)
            assert (z > 0).all()
    points = unproject_depth(record.depth, record.K, record.c2w)
    assert np.abs(plane_distance(points[ok])).max() < 0.01


def test_pointodyssey_broken_annotations(tmp_path):
    write_pointodyssey(tmp_path)
    np.savez(tmp_path / "anno.npz", intrinsics=per_frame_K())
    with pytest.raises(One4DInputError, match=r"anno\.npz' lacks extrinsics"):
        read_pointodyssey(tmp_path)
    np.savez(tmp_path / "anno.npz", intrinsics=per_frame_K(4), extrinsics=np.tile(np.eye(4), (4, 1, 1)))
    with pytest.raises(One4DInputError, match=r"anno\.npz: 4 intrinsics for 3 frames"):
        read_pointodyssey(tmp_path)
    (tmp_path / "depths" / "depth_00002.png").unlink()
    with pytest.raises(One4DInputError, match=r"missing depth file '.*depths/depth_00002\.png' for frame '.*rgb_00002\.jpg'"):
        read_pointodyssey(tmp_path)


# --- TartanAir: image_left/NNNNNN_left.png, depth_left/NNNNNN_left_depth.npy (metres), pose_left.txt (NED)

def tartanair_K() -> np.ndarray:
    """TartanAir's 90 degree camera at 24 x 16: fx = fy = cx = W / 2 = 12, cy = H / 2 = 8."""
    return np.array([[12.0, 0.0, 12.0], [0.0, 12.0, 8.0], [0.0, 0.0, 1.0]])


def write_tartanair(folder, camera="left", c2w=None):
    c2w = plane_cameras(F) if c2w is None else c2w
    depth = plane_depth(tartanair_K(), c2w, H, W)
    lines = []
    for i, img in enumerate(random_rgb(F, H, W)):
        write_image(folder / f"image_{camera}" / f"{i:06d}_{camera}.png", img)
        (folder / f"depth_{camera}").mkdir(exist_ok=True)
        np.save(folder / f"depth_{camera}" / f"{i:06d}_{camera}_depth.npy", depth[i].astype(np.float32))
        ned_axes = c2w[i, :3, [2, 0, 1]].T  # body x forward = camera z, y right = camera x, z down = camera y
        lines.append(" ".join(f"{v:.9e}" for v in [*c2w[i, :3, 3], *quaternion_xyzw(ned_axes)]))
    (folder / f"pose_{camera}.txt").write_text("\n".join(lines) + "\n")
    return depth, c2w


def test_tartanair(tmp_path):
    folder = tmp_path / "abandonedfactory" / "Easy" / "P001"
    depth, c2w = write_tartanair(folder)
    d = np.load(folder / "depth_left" / "000002_left_depth.npy")
    d[-2:] = 10000.0  # the sky sphere
    np.save(folder / "depth_left" / "000002_left_depth.npy", d)
    seq = read_tartanair(folder)
    record = seq.read()
    assert seq.source == "tartanair/abandonedfactory/Easy/P001/left"
    assert not record.valid[2, -2:].any() and record.valid.sum() == F * H * W - 2 * W
    np.testing.assert_allclose(record.depth[record.valid], depth[record.valid], rtol=1e-6)
    np.testing.assert_allclose(record.K, np.broadcast_to(tartanair_K(), (F, 3, 3)))
    np.testing.assert_allclose(record.c2w, c2w, atol=1e-6)
    points = unproject_depth(record.depth, record.K, record.c2w)
    assert np.abs(plane_distance(points[record.valid])).max() < 1e-5


def test_tartanair_known_pose_and_intrinsics(tmp_path):
    """Yaw 90 degrees about the NED down axis: the camera looks east (world +y), its right is world -x."""
    write_tartanair(tmp_path)
    (tmp_path / "pose_left.txt").write_text("1 2 3 0 0 0.70710678 0.70710678\n" * F)
    expected = np.array([[-1.0, 0, 0, 1], [0, 0, 1, 2], [0, 1, 0, 3], [0, 0, 0, 1]])
    np.testing.assert_allclose(read_tartanair(tmp_path).c2w[0], expected, atol=1e-7)
    from one4d.data.datasets.tartanair import tartanair_intrinsics
    np.testing.assert_allclose(tartanair_intrinsics(480, 640), [[320, 0, 320], [0, 320, 240], [0, 0, 1]])


def test_tartanair_right_camera_and_errors(tmp_path):
    write_tartanair(tmp_path)
    right = plane_cameras(F)
    right[:, :3, 3] += right[:, :3, 0] * 0.25  # the right camera, 0.25 m along the left one's x axis
    write_tartanair(tmp_path, "right", right)
    np.testing.assert_allclose(read_tartanair(tmp_path, camera="right").c2w, right, atol=1e-6)
    with pytest.raises(One4DInputError, match="camera 'front'"):
        read_tartanair(tmp_path, camera="front")
    (tmp_path / "pose_left.txt").write_text("0 0 0 0 0 0 1\n" * (F + 2))
    with pytest.raises(One4DInputError, match=r"pose_left\.txt: 5 poses for 3 frames"):
        read_tartanair(tmp_path)
    (tmp_path / "pose_left.txt").write_text("0 0 0 0 0 1\n" * F)
    with pytest.raises(One4DInputError, match="6 columns per row; its format has 7"):
        read_tartanair(tmp_path)


# --- Virtual KITTI 2: frames/{rgb,depth}/Camera_c/..., intrinsic.txt, extrinsic.txt (world-to-camera), depth in cm

def write_vkitti2(folder):
    K = per_frame_K()
    cams = [plane_cameras(F), plane_cameras(F)]
    cams[1][:, :3, 3] += cams[1][:, :3, 0] * 0.532  # the right camera of the stereo rig
    intr, extr = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"], [
        "frame cameraID r1,1 r1,2 r1,3 t1 r2,1 r2,2 r2,3 t2 r3,1 r3,2 r3,3 t3 0 0 0 1"]
    for i in range(F):
        for c in (0, 1):
            depth = plane_depth(K[i], cams[c][i:i + 1], H, W)[0]
            write_image(folder / "frames" / "rgb" / f"Camera_{c}" / f"rgb_{i:05d}.jpg", random_rgb(1, H, W, seed=i)[0])
            write_image(folder / "frames" / "depth" / f"Camera_{c}" / f"depth_{i:05d}.png",
                        np.rint(depth * 100).astype(np.uint16))
            intr.append(f"{i} {c} {K[i, 0, 0]} {K[i, 1, 1]} {K[i, 0, 2]} {K[i, 1, 2]}")
            extr.append(f"{i} {c} " + " ".join(f"{v:.10f}" for v in np.linalg.inv(cams[c][i]).ravel()))
    (folder / "intrinsic.txt").write_text("\n".join(intr) + "\n")
    (folder / "extrinsic.txt").write_text("\n".join(extr) + "\n")
    return K, cams


def test_vkitti2(tmp_path):
    folder = tmp_path / "Scene01" / "clone"
    K, cams = write_vkitti2(folder)
    path = folder / "frames" / "depth" / "Camera_0" / "depth_00000.png"
    codes = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    codes[:2] = 65535  # sky at the far plane
    cv2.imwrite(str(path), codes)
    for camera in (0, 1):
        seq = read_vkitti2(folder, camera=camera)
        record = seq.read()
        assert seq.source == f"vkitti2/Scene01/clone/Camera_{camera}"
        np.testing.assert_allclose(record.K, K)
        np.testing.assert_allclose(record.c2w, cams[camera], atol=1e-8)
        expected = plane_depth(K, cams[camera], H, W)
        np.testing.assert_allclose(record.depth[record.valid], expected[record.valid], atol=0.005 + 1e-6)
        points = unproject_depth(record.depth, record.K, record.c2w)
        assert np.abs(plane_distance(points[record.valid])).max() < 0.006
    assert not read_vkitti2(folder).read([0]).valid[0, :2].any() and read_vkitti2(folder, camera=1).read().valid.all()


def test_vkitti2_errors(tmp_path):
    write_vkitti2(tmp_path)
    with pytest.raises(One4DInputError, match="camera 2"):
        read_vkitti2(tmp_path, camera=2)
    lines = (tmp_path / "extrinsic.txt").read_text().splitlines()
    (tmp_path / "extrinsic.txt").write_text("\n".join(lines[:-2]) + "\n")  # frame 2 lost
    with pytest.raises(One4DInputError, match=r"extrinsic\.txt: 2 rows of camera 0 for 3 frames"):
        read_vkitti2(tmp_path)
    (tmp_path / "intrinsic.txt").unlink()
    with pytest.raises(One4DInputError, match=r"missing camera file '.*intrinsic\.txt'"):
        read_vkitti2(tmp_path)


# --- every reader through the whole sampling path

@pytest.mark.parametrize("kind, tol", [("pointodyssey", 0.01), ("tartanair", 1e-5), ("vkitti2", 0.006)])
def test_sampled_clip_from_each_dataset_lies_on_the_plane(tmp_path, kind, tol):
    folder = tmp_path / "Scene01" / "clone" if kind == "vkitti2" else tmp_path / "seq"
    {"pointodyssey": write_pointodyssey, "tartanair": write_tartanair, "vkitti2": write_vkitti2}[kind](folder)
    clip = sample_clip(open_sequence(kind, folder), ClipSpec(frames=3, height=16, width=16), time_stride=2,
                       size_multiple=8, rng=np.random.default_rng(0))
    assert clip.valid.mean() > 0.95 and clip.rgb.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(clip.c2w[0], np.eye(4), atol=1e-6)
    world = to_world(clip.points, plane_cameras(F)[0])
    assert np.abs(plane_distance(world[clip.valid])).max() < tol


def test_find_and_open_sequences(tmp_path):
    for name in ("b", "a"):
        write_pointodyssey(tmp_path / "train" / name)
    (tmp_path / "train" / "a" / "caption.txt").write_text("a person dances\n")
    found = find_sequences("pointodyssey", tmp_path)
    assert found == [tmp_path / "train" / "a", tmp_path / "train" / "b"]
    assert open_sequence("pointodyssey", found[0]).caption == "a person dances"
    assert read_pointodyssey(found[0], caption="given").caption == "given"
    assert find_sequences("tartanair", tmp_path) == []
    with pytest.raises(One4DInputError, match="unknown dataset kind 'kitti'.*folder, pointodyssey, tartanair, vkitti2"):
        find_sequences("kitti", tmp_path)
    with pytest.raises(One4DInputError, match="is not a folder"):
        find_sequences("pointodyssey", tmp_path / "nothing")
