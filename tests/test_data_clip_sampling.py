"""Clip sampling (one4d/data/clip_sampling.py): length from the caller's time stride, frame stride, resize and crop
with exact intrinsics, pointmaps in the first camera's frame, invalid pixels masked, normalization recorded."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from clip_factory import intrinsics, plane_cameras, plane_depth, plane_distance, random_rgb, to_world
from one4d.data import render_scene
from one4d.data.clip_sampling import ClipSpec, sample_clip
from one4d.data.clips import read_clip_folder
from one4d.errors import One4DInputError
from one4d.geometry.projection import pixel_grid, project_points
from one4d.pointmap import denormalize, fit_normalization


def write_scene_folder(root, rgb, depth, K, c2w, caption="scene"):
    """A clip folder with float depth in metres."""
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    for i in range(len(depth)):
        assert cv2.imwrite(str(root / "rgb" / f"{i:05d}.png"), np.ascontiguousarray(rgb[i][..., ::-1]))
        np.save(root / "depth" / f"{i:05d}.npy", depth[i].astype(np.float32))
    meta = {"caption": caption, "depth_units": "m", "K": np.asarray(K).tolist(), "c2w": np.asarray(c2w).tolist()}
    (root / "clip.json").write_text(json.dumps(meta))
    return read_clip_folder(root)


def plane_sequence(root, frames=9, height=36, width=52):
    K, c2w = intrinsics(height, width), plane_cameras(frames)
    return write_scene_folder(root, random_rgb(frames, height, width), plane_depth(K, c2w, height, width), K, c2w), c2w


def reprojection_error(clip) -> float:
    """Largest pixel distance between each valid point projected with the clip's K and pose and its own pixel."""
    u, v = pixel_grid(*clip.valid.shape[1:])
    worst = 0.0
    for i in range(len(clip.valid)):
        uv, z = project_points(clip.points[i], clip.K[i], clip.c2w[i])
        ok = clip.valid[i]
        assert (z[ok] > 0).all()
        worst = max(worst, float(np.abs(uv[ok] - np.stack([u, v], -1)[ok]).max()))
    return worst


@pytest.mark.parametrize("crop, seed", [("center", None), ("random", 3)])
def test_plane_through_resize_and_crop_is_exact(tmp_path, crop, seed):
    """36x52 -> 16x24 (scale 0.46, then a crop): every point stays on the plane and on its own pixel's ray."""
    seq, c2w = plane_sequence(tmp_path)
    rng = None if seed is None else np.random.default_rng(seed)
    spec = ClipSpec(frames=5, height=16, width=24, frame_stride=2, crop=crop)
    clip = sample_clip(seq, spec, time_stride=4, size_multiple=8, rng=rng, start=None if rng else 0)
    assert clip.rgb.shape == (5, 16, 24, 3) and clip.points.shape == (5, 16, 24, 3) and clip.K.shape == (5, 3, 3)
    np.testing.assert_array_equal(clip.frames, clip.frames[0] + 2 * np.arange(5))
    assert clip.valid.all()  # a plane has no depth edges
    np.testing.assert_allclose(clip.c2w[0], np.eye(4), atol=1e-6)
    # back in the world, the points lie on the plane (metres, float32 rounding)
    assert np.abs(plane_distance(to_world(clip.points, c2w[clip.frames[0]]))).max() < 2e-5
    assert reprojection_error(clip) < 2e-3
    np.testing.assert_allclose(clip.c2w, np.linalg.inv(c2w[clip.frames[0]]) @ c2w[clip.frames], atol=1e-5)


def test_random_draws_repeat_with_the_seed(tmp_path):
    seq, _ = plane_sequence(tmp_path)
    spec = ClipSpec(frames=3, height=16, width=16, crop="random")
    a, b = (sample_clip(seq, spec, 2, 16, rng=np.random.default_rng(7)) for _ in range(2))
    np.testing.assert_array_equal(a.points, b.points)
    np.testing.assert_array_equal(a.frames, b.frames)
    starts = {int(sample_clip(seq, spec, 2, 16, rng=np.random.default_rng(s)).frames[0]) for s in range(12)}
    assert len(starts) > 2 and max(starts) <= 9 - 3


def test_procedural_scene_gives_its_pointmap_in_the_first_sampled_camera(tmp_path):
    """A rendered scene (exact depth, K, poses) written as a clip folder at 64x64 and sampled to 32x32 from frame 4
    every 2nd frame equals the same scene rendered at 32x32, re-anchored to its frame-4 camera."""
    big, small = render_scene(3, frames=17, height=64, width=64), render_scene(3, frames=17, height=32, width=32)
    seq = write_scene_folder(tmp_path, (big.rgb * 255).round().astype(np.uint8), big.depth, big.K, big.c2w, big.caption)
    clip = sample_clip(seq, ClipSpec(frames=5, height=32, width=32, frame_stride=2), 4, 16, start=4)
    np.testing.assert_array_equal(clip.frames, [4, 6, 8, 10, 12])
    np.testing.assert_allclose(clip.K, small.K[clip.frames], rtol=1e-6)
    inv0 = np.linalg.inv(small.c2w[4].astype(np.float64))
    expected = small.points[clip.frames].astype(np.float64) @ inv0[:3, :3].T + inv0[:3, 3]
    error = np.linalg.norm(clip.points - expected, axis=-1)[clip.valid] / clip.depth[clip.valid]
    assert clip.valid.mean() > 0.9  # only pixels that mix an object edge with the room behind it are dropped
    # exact on the flat room faces (most pixels); curved objects and room corners: second-order error
    assert np.percentile(error, 90) < 1e-5 and error.max() < 0.05
    assert clip.caption == big.caption and clip.source == f"folder/{tmp_path.name}"
    # the pointmap reprojects through the new intrinsics and relative poses
    assert reprojection_error(clip) < 2e-3


def test_invalid_depth_masks_and_far_points_are_left_out(tmp_path):
    K, c2w = intrinsics(32, 32), plane_cameras(5)
    depth = plane_depth(K, c2w, 32, 32)
    depth[0, :10, :10] = 0.0  # no depth
    seq = write_scene_folder(tmp_path, random_rgb(5, 32, 32), depth, K, c2w)
    clip = sample_clip(seq, ClipSpec(frames=5, height=16, width=16), 4, 16)
    assert not clip.valid[0, :5, :5].any() and clip.valid[0, 6:, 6:].all() and clip.valid[1:].all()
    assert (clip.points[~clip.valid] == 0).all() and (clip.depth[~clip.valid] == 0).all()
    assert (clip.normalized[~clip.valid] == 0).all()
    far = sample_clip(seq, ClipSpec(frames=5, height=16, width=16, max_depth=5.0), 4, 16)
    assert far.valid.sum() < clip.valid.sum() and (far.depth[far.valid] <= 5.0).all()
    assert (far.depth[clip.valid & ~far.valid] == 0).all()


def test_depth_edges_do_not_make_flying_points(tmp_path):
    """A box 1 m in front of a wall 5 m away, shrunk 32 -> 16: no point lands between the two depths."""
    depth = np.full((1, 32, 32), 5.0)
    depth[0, 8:21, 8:21] = 1.0
    K = np.array([[20.0, 0, 15.5], [0, 20.0, 15.5], [0, 0, 1]])
    seq = write_scene_folder(tmp_path, random_rgb(1, 32, 32), depth, K, np.eye(4)[None])
    clip = sample_clip(seq, ClipSpec(frames=1, height=16, width=16), 4, 16)
    kept = clip.depth[clip.valid]
    assert set(np.round(kept, 6)) == {1.0, 5.0} and clip.valid.mean() > 0.7


def test_normalization_is_recorded(tmp_path):
    seq, _ = plane_sequence(tmp_path)
    clip = sample_clip(seq, ClipSpec(frames=5, height=16, width=24), 4, 8)
    assert clip.normalization == fit_normalization(clip.points, clip.valid)
    assert np.abs(clip.normalized).max() <= 1.0
    inside = clip.valid & (np.abs(clip.normalized) < 1.0).all(-1)
    assert inside.mean() > 0.9
    np.testing.assert_allclose(denormalize(clip.normalized, clip.normalization)[inside], clip.points[inside], atol=1e-5)


def test_frame_count_follows_the_callers_time_stride(tmp_path):
    seq, _ = plane_sequence(tmp_path, frames=9, height=16, width=16)
    assert len(sample_clip(seq, ClipSpec(frames=7, height=16, width=16), time_stride=2, size_multiple=16).frames) == 7
    with pytest.raises(One4DInputError, match=r"frames=7 is not k x 4 \+ 1 .*use frames=5 or frames=9"):
        sample_clip(seq, ClipSpec(frames=7, height=16, width=16), time_stride=4, size_multiple=16)
    with pytest.raises(One4DInputError, match=r"frames=80 is not k x 4 \+ 1 .*use frames=77 or frames=81"):
        sample_clip(seq, ClipSpec(frames=80), time_stride=4, size_multiple=16)


def test_sizes_must_be_multiples_of_the_callers_size_multiple(tmp_path):
    seq, _ = plane_sequence(tmp_path, frames=5, height=16, width=16)
    assert sample_clip(seq, ClipSpec(frames=5, height=24, width=8), 4, 8).rgb.shape == (5, 24, 8, 3)
    with pytest.raises(One4DInputError, match=r"height=24 is not a positive multiple of 16 .*use height=16 or height=32"):
        sample_clip(seq, ClipSpec(frames=5, height=24, width=16), 4, 16)
    with pytest.raises(One4DInputError, match=r"width=350 .*use width=336 or width=352"):
        sample_clip(seq, ClipSpec(width=350), 4, 16)


@pytest.mark.parametrize("spec, match", [
    (ClipSpec(frames=5, height=16, width=16, frame_stride=0), "frame_stride=0"),
    (ClipSpec(frames=5, height=16, width=16, crop="left"), "crop='left'"),
    (ClipSpec(frames=5, height=16, width=16, max_depth=0.0), "max_depth=0.0"),
])
def test_bad_spec(tmp_path, spec, match):
    seq, _ = plane_sequence(tmp_path, frames=5, height=16, width=16)
    with pytest.raises(One4DInputError, match=match):
        sample_clip(seq, spec, 4, 16)


def test_too_short_sequence_names_it_and_the_fix(tmp_path):
    seq, _ = plane_sequence(tmp_path, frames=9, height=16, width=16)
    with pytest.raises(One4DInputError, match=r"folder/\S+ has 9 frames; 5 frames at frame_stride 3 span 13\. "
                                              r"Use frame_stride=2 or less, or fewer frames \(at most 9"):
        sample_clip(seq, ClipSpec(frames=5, height=16, width=16, frame_stride=3), 4, 16)
    with pytest.raises(One4DInputError, match=r"17 frames at frame_stride 1 span 17\. Use fewer frames \(at most 9"):
        sample_clip(seq, ClipSpec(frames=17, height=16, width=16), 4, 16)
    with pytest.raises(One4DInputError, match=r"start=6 is outside 0\.\.4"):
        sample_clip(seq, ClipSpec(frames=5, height=16, width=16), 4, 16, start=6)
    with pytest.raises(One4DInputError, match="needs an rng"):
        sample_clip(seq, ClipSpec(frames=5, height=16, width=16, crop="random"), 4, 16)


def test_clip_without_valid_depth_names_its_source(tmp_path):
    K = intrinsics(16, 16)
    seq = write_scene_folder(tmp_path, random_rgb(1, 16, 16), np.zeros((1, 16, 16)), K, np.eye(4)[None])
    with pytest.raises(One4DInputError, match=r"folder/\S+ frames 0\.\.0: pointmap has no valid finite point"):
        sample_clip(seq, ClipSpec(frames=1, height=16, width=16), 4, 16)


def test_upscaling_keeps_intrinsics_consistent(tmp_path):
    """A source smaller than the target (12x12 -> 16x32) is enlarged with the same exact intrinsics."""
    K, c2w = intrinsics(12, 12, focal=10.0), plane_cameras(5)
    seq = write_scene_folder(tmp_path, random_rgb(5, 12, 12), plane_depth(K, c2w, 12, 12), K, c2w)
    clip = sample_clip(seq, ClipSpec(frames=5, height=16, width=32), 4, 16)
    assert reprojection_error(clip) < 2e-3
    interior = clip.valid.copy()
    interior[:, [0, -1]] = False
    interior[:, :, [0, -1]] = False  # enlarged borders extrapolate half a source pixel
    assert interior.sum() > 0.5 * interior.size
    assert np.abs(plane_distance(to_world(clip.points, c2w[clip.frames[0]]))[interior]).max() < 2e-5
