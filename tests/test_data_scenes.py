"""Tests for the procedural 4D scenes (one4d.data)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from one4d.data import (
    HELDOUT_SEEDS,
    TRAIN_SEEDS,
    Scene4D,
    check_training_seeds,
    render_dataset,
    render_scene,
    sample_scene,
)
from one4d.data.preview import save_strip, scene_strip
from one4d.errors import One4DInputError


@pytest.fixture(scope="module")
def scene() -> Scene4D:
    # non-square on purpose: a swapped u/v or H/W shows up
    return render_scene(3, frames=9, height=48, width=80)


def _static_camera_seed(limit: int = 300) -> int:
    for seed in range(limit):
        spec = sample_scene(seed)
        if spec.camera.kind == "static" and not spec.camera.jitter:
            return seed
    raise AssertionError("no static-camera scene among the first seeds")


def test_deterministic_by_seed():
    a, b = render_scene(11, 5, 32, 32), render_scene(11, 5, 32, 32)
    for key in ("rgb", "depth", "points", "valid", "K", "c2w", "surface"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert a.caption == b.caption and a.seed == b.seed == 11


def test_different_seeds_differ():
    a, b = render_scene(1, 5, 32, 32), render_scene(2, 5, 32, 32)
    assert not np.allclose(a.rgb, b.rgb)
    assert not np.allclose(a.depth, b.depth)
    assert a.caption != b.caption


def test_shapes_dtypes_ranges(scene):
    f, h, w = 9, 48, 80
    assert scene.rgb.shape == (f, h, w, 3) and scene.rgb.dtype == np.float32
    assert scene.depth.shape == (f, h, w) and scene.depth.dtype == np.float32
    assert scene.points.shape == (f, h, w, 3) and scene.points.dtype == np.float32
    assert scene.valid.shape == (f, h, w) and scene.valid.dtype == np.bool_
    assert scene.K.shape == (f, 3, 3) and scene.K.dtype == np.float32
    assert scene.c2w.shape == (f, 4, 4) and scene.c2w.dtype == np.float32
    assert scene.rgb.min() >= 0.0 and scene.rgb.max() <= 1.0
    assert scene.rgb.std() > 0.05  # not a blank image
    assert scene.valid.mean() > 0.99  # closed room: every ray hits something
    assert np.isfinite(scene.points).all() and np.isfinite(scene.depth).all()
    np.testing.assert_array_equal(scene.c2w[:, 3], np.tile([0, 0, 0, 1], (f, 1)))
    rot = scene.c2w[:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.tile(np.eye(3), (f, 1, 1)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    # intrinsics: square pixels, principal point at the image center (pixel centers at integers)
    np.testing.assert_allclose(scene.K[:, 0, 2], (w - 1) / 2)
    np.testing.assert_allclose(scene.K[:, 1, 2], (h - 1) / 2)
    np.testing.assert_array_equal(scene.K[:, 0, 0], scene.K[:, 1, 1])
    fov = np.rad2deg(2 * np.arctan((w / 2) / scene.K[0, 0, 0]))
    assert 45.0 - 1e-3 <= fov <= 75.0 + 1e-3
    assert isinstance(scene.caption, str) and len(scene.caption.split()) >= 6


def test_lifting_identity_random_pixels(scene):
    rng = np.random.default_rng(0)
    f, h, w = scene.depth.shape
    fi, vi, ui = rng.integers(0, f, 300), rng.integers(0, h, 300), rng.integers(0, w, 300)
    pix = np.stack([ui, vi, np.ones_like(ui)], axis=1).astype(np.float64)  # u = column, v = row
    k_inv = np.linalg.inv(scene.K.astype(np.float64))[fi]
    cam = np.einsum("nij,nj->ni", k_inv, pix) * scene.depth[fi, vi, ui, None].astype(np.float64)
    c2w = scene.c2w.astype(np.float64)[fi]
    world = np.einsum("nij,nj->ni", c2w[:, :3, :3], cam) + c2w[:, :3, 3]
    np.testing.assert_allclose(world, scene.points[fi, vi, ui], atol=1e-4, rtol=0)
    # and the half-pixel convention would be measurably wrong
    cam_half = np.einsum("nij,nj->ni", k_inv, pix + [0.5, 0.5, 0]) * scene.depth[fi, vi, ui, None]
    world_half = np.einsum("nij,nj->ni", c2w[:, :3, :3], cam_half) + c2w[:, :3, 3]
    assert np.abs(world_half - scene.points[fi, vi, ui]).max() > 1e-3


def test_frame0_camera_is_world(scene):
    np.testing.assert_array_equal(scene.c2w[0], np.eye(4, dtype=np.float32))
    np.testing.assert_allclose(scene.points[0, ..., 2], scene.depth[0], rtol=1e-6)
    # depth is the z-depth of each frame's own camera
    w2c = np.linalg.inv(scene.c2w[-1].astype(np.float64))
    cam = scene.points[-1].reshape(-1, 3) @ w2c[:3, :3].T + w2c[:3, 3]
    np.testing.assert_allclose(cam[:, 2], scene.depth[-1].ravel(), rtol=1e-5, atol=1e-5)


def test_room_surfaces_are_static_planes_across_frames():
    """Points of each wall from all frames lie on one plane in world space: the poses are consistent."""
    sc = render_scene(5, frames=9, height=48, width=48)
    assert not np.allclose(sc.c2w[-1], np.eye(4), atol=1e-3)  # a moving camera
    checked = 0
    for face in range(6):
        pts = sc.points[sc.surface == face].astype(np.float64)
        frames_seen = np.unique(np.nonzero(sc.surface == face)[0])
        if len(pts) < 50 or len(frames_seen) < 2:
            continue
        center = pts.mean(axis=0)
        normal = np.linalg.svd(pts - center, full_matrices=False)[2][-1]
        assert np.abs((pts - center) @ normal).max() < 1e-3, f"face {face} is not one plane"
        checked += 1
    assert checked >= 3


def _seed_with_path(kind: str, **attrs) -> int:
    for seed in range(500):
        cam = sample_scene(seed).camera
        if cam.kind == kind and not cam.jitter and cam.scale == 1.0 and all(
            getattr(cam, k) == v for k, v in attrs.items()
        ):
            return seed
    raise AssertionError(f"no {kind} camera among the first seeds")


def _angle_deg(rot: np.ndarray) -> float:
    return float(np.rad2deg(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1))))


def test_camera_motion_matches_path_kind():
    frames = 9
    # pan: the camera turns in place, by the sampled yaw
    seed = _seed_with_path("pan")
    sc, cam = render_scene(seed, frames, 16, 16), sample_scene(seed).camera
    np.testing.assert_allclose(sc.c2w[:, :3, 3], 0.0, atol=1e-5)
    assert abs(_angle_deg(sc.c2w[-1, :3, :3]) - np.rad2deg(np.hypot(cam.pan_yaw, cam.pan_pitch))) < 3.0
    assert np.sign(sc.c2w[-1, 0, 2]) == np.sign(cam.pan_yaw)  # pan right: the view axis swings to +x
    # dolly forward: no rotation, moves along the view axis
    seed = _seed_with_path("dolly", direction_name="forward")
    sc, cam = render_scene(seed, frames, 16, 16), sample_scene(seed).camera
    np.testing.assert_allclose(sc.c2w[:, :3, :3], np.tile(np.eye(3), (frames, 1, 1)), atol=1e-5)
    move = sc.c2w[-1, :3, 3]
    assert abs(np.linalg.norm(move) - cam.distance) < 1e-4 and move[2] > 0.8 * cam.distance
    # orbit: constant distance to the target, always looking at it
    seed = _seed_with_path("orbit")
    sc, cam = render_scene(seed, frames, 16, 16), sample_scene(seed).camera
    to_room = cam.poses(np.zeros(1))[0]
    target = np.linalg.inv(to_room) @ np.append(cam.target, 1.0)
    offsets = target[:3] - sc.c2w[:, :3, 3]
    dist = np.linalg.norm(offsets, axis=1)
    np.testing.assert_allclose(dist, dist[0], rtol=1e-4)
    np.testing.assert_allclose(offsets / dist[:, None], sc.c2w[:, :3, 2], atol=1e-4)
    assert _angle_deg(sc.c2w[-1, :3, :3]) > 10


def test_depth_positive_and_sane():
    for seed in range(8):
        sc = render_scene(seed, 5, 32, 32)
        assert sc.depth[sc.valid].min() > 0.3
        assert sc.depth.max() < 12.0


def test_objects_move_with_static_camera():
    seed = _static_camera_seed()
    sc = render_scene(seed)
    np.testing.assert_allclose(sc.c2w, np.tile(np.eye(4), (sc.c2w.shape[0], 1, 1)), atol=1e-6)
    changed = np.abs(sc.rgb[-1] - sc.rgb[0]).max(axis=-1) > 0.05
    assert changed.mean() > 0.005, "a static camera sees no motion"
    moved = np.abs(sc.depth[-1] - sc.depth[0]) > 0.01
    assert moved.mean() > 0.005
    assert (sc.surface[0] != sc.surface[-1]).any()  # object silhouettes moved


def test_content_independent_of_frame_count_and_size():
    a = render_scene(21, frames=17, height=32, width=32)
    b = render_scene(21, frames=5, height=64, width=48)
    assert a.caption == b.caption
    np.testing.assert_allclose(a.c2w[::4], b.c2w, atol=1e-6)  # same path, sampled every 4th frame
    fov_a = 2 * np.arctan(16 / a.K[0, 0, 0])
    fov_b = 2 * np.arctan(24 / b.K[0, 0, 0])
    assert abs(fov_a - fov_b) < 1e-5


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"frames": 16}, "frames"),
        ({"frames": 0}, "frames"),
        ({"frames": 2.0}, "frames"),
        ({"height": 60}, "height"),
        ({"width": 0}, "width"),
        ({"width": 8}, "width"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(One4DInputError) as err:
        render_scene(0, **kwargs)
    message = str(err.value)
    assert name in message and ("use " in message or "pass " in message)
    assert isinstance(err.value, ValueError)


def test_bad_argument_message_suggests_valid_values():
    with pytest.raises(One4DInputError, match=r"frames=13 or frames=17"):
        render_scene(0, frames=16)
    with pytest.raises(One4DInputError, match=r"height=48 or height=64"):
        render_scene(0, height=60)


def test_variety_across_seeds():
    infos = [render_scene(seed, 5, 16, 16).info for seed in range(50)]
    counts = {i["num_objects"] for i in infos}
    fovs = [i["fov_deg"] for i in infos]
    paths = {i["camera_path"] for i in infos}
    kinds = {o["kind"] for i in infos for o in i["objects"]}
    motions = {o["motion"] for i in infos for o in i["objects"]}
    textures = {i["floor_texture"] for i in infos} | {t for i in infos for t in i["wall_textures"]}
    assert len(counts) >= 4, counts
    assert max(fovs) - min(fovs) > 20 and min(fovs) >= 45 and max(fovs) <= 75
    assert paths == {"static", "dolly", "orbit", "pan", "handheld"}, paths
    assert kinds == {"sphere", "box", "cylinder"}
    assert motions == {"static", "linear", "circular", "bouncing"}
    assert len(textures) >= 4
    assert all(any(o["motion"] != "static" for o in i["objects"]) for i in infos)


def test_captions_describe_contents():
    for seed in range(20):
        sc = render_scene(seed, 1, 16, 16)
        for obj in sc.info["objects"]:
            assert obj["kind"] in sc.caption
        assert "room" in sc.caption and "camera" in sc.caption
    captions = {render_scene(s, 1, 16, 16).caption for s in range(30)}
    assert len(captions) >= 28


def test_render_dataset_stacks():
    data = render_dataset([4, 9, 4], frames=5, height=16, width=32)
    assert data["rgb"].shape == (3, 5, 16, 32, 3)
    assert data["points"].shape == (3, 5, 16, 32, 3)
    assert data["depth"].shape == (3, 5, 16, 32) and data["valid"].shape == (3, 5, 16, 32)
    assert data["K"].shape == (3, 5, 3, 3) and data["c2w"].shape == (3, 5, 4, 4)
    assert list(data["seeds"]) == [4, 9, 4] and len(data["captions"]) == 3
    np.testing.assert_array_equal(data["rgb"][0], data["rgb"][2])
    assert data["captions"][0] == render_scene(4, 1, 16, 16).caption
    with pytest.raises(One4DInputError):
        render_dataset([])
    with pytest.raises(One4DInputError):
        render_dataset([1], frames=6)


def test_seed_split():
    assert set(TRAIN_SEEDS).isdisjoint(HELDOUT_SEEDS)
    assert min(HELDOUT_SEEDS) >= 1_000_000 > max(TRAIN_SEEDS)
    check_training_seeds(range(100))
    with pytest.raises(One4DInputError, match="held-out"):
        check_training_seeds([5, HELDOUT_SEEDS[0]])


def test_png_strip(tmp_path):
    sc = render_scene(0, frames=9, height=32, width=48)
    strip = scene_strip(sc, every=4, upscale=1)
    assert strip.shape == (64, 144, 3) and strip.dtype == np.uint8
    # top: frames 0, 4, 8 left to right, as 8-bit RGB
    for j, f in enumerate((0, 4, 8)):
        np.testing.assert_array_equal(strip[:32, 48 * j:48 * (j + 1)], np.round(sc.rgb[f] * 255).astype(np.uint8))
    # bottom: depth of the same frames, one colour range for all: the nearest pixel is warm, the farthest cool
    bottom = strip[32:].astype(int)
    depth = np.concatenate([sc.depth[f] for f in (0, 4, 8)], axis=1)
    near, far = np.unravel_index(depth.argmin(), depth.shape), np.unravel_index(depth.argmax(), depth.shape)
    assert bottom[near][0] > bottom[near][2] + 50 and bottom[far][2] > bottom[far][0]  # turbo: dark red .. dark blue
    assert len(np.unique(bottom.reshape(-1, 3), axis=0)) > 20  # a ramp, not a flat fill
    # the PNG holds the same strip, pixels repeated 2x2, in RGB order once read back as RGB
    path = tmp_path / "strip.png"
    save_strip(sc, str(path), every=4, upscale=2)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None
    np.testing.assert_array_equal(img[..., ::-1], np.repeat(np.repeat(strip, 2, axis=0), 2, axis=1))
