"""Flying-point removal at depth discontinuities."""
from __future__ import annotations

import numpy as np
import pytest

from one4d.errors import One4DInputError
from one4d.geometry import CameraEstimate, flying_point_mask, intrinsics_from_focal, remove_flying_points


def step_depth():
    """Foreground at depth 1 (columns < 10), background at 3 (columns >= 12), a smeared band between."""
    d = np.full((8, 24), 3.0, np.float32)
    d[:, :10] = 1.0
    d[:, 10] = 1.7  # interpolated pixels: flying points
    d[:, 11] = 2.4
    return d


def test_between_mode_removes_only_the_smeared_band():
    flying = flying_point_mask(step_depth(), mode="between", radius=1)
    assert flying[:, 10].all() and flying[:, 11].all()
    assert not flying[:, :10].any() and not flying[:, 12:].any()


def test_edge_mode_removes_the_band_and_a_thin_rim():
    flying = flying_point_mask(step_depth(), mode="edge", radius=1)
    assert flying[:, 9:13].all()
    assert not flying[:, :9].any() and not flying[:, 13:].any()


def test_smooth_slopes_and_invalid_pixels_are_kept_out():
    ramp = np.tile(np.linspace(2.0, 2.2, 30, dtype=np.float32), (6, 1))
    assert not flying_point_mask(ramp).any()
    d = step_depth()
    valid = np.ones_like(d, bool)
    valid[:, 10:12] = False  # already invalid: neither flagged nor used as neighbours
    flying = flying_point_mask(d, valid, mode="between")
    assert not flying.any()


def test_remove_flying_points_updates_an_estimate():
    F, H, W = 2, 40, 64
    v, u = np.mgrid[0:H, 0:W]
    depth = np.stack([3.0 + 0.2 * np.sin(u / 9.0 + i) for i in range(F)]).astype(np.float32)
    box = (u > 20) & (u < 40) & (v > 10) & (v < 30)
    depth[:, box] *= 0.5
    est = CameraEstimate(
        K=intrinsics_from_focal(60.0, H, W, F), c2w=np.tile(np.eye(4, dtype=np.float32), (F, 1, 1)),
        depth=depth, valid=np.ones((F, H, W), bool), focal=np.full(F, 60.0, np.float32),
    )
    cleaned = remove_flying_points(est)
    removed = est.valid & ~cleaned.valid
    assert removed.sum() == cleaned.stats["flying_removed"] > 0
    # every removed pixel is within one pixel of the box outline (numpy shifts, no OpenCV) and vice versa
    d = np.pad(depth, ((0, 0), (1, 1), (1, 1)), mode="edge")
    shifts = [d[:, 1 + dy : 1 + dy + H, 1 + dx : 1 + dx + W] for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    near_edge = np.max(shifts, axis=0) > 1.5 * np.min(shifts, axis=0)
    assert np.array_equal(removed, near_edge)
    assert (cleaned.depth[~cleaned.valid] == 0).all() and (est.depth > 0).all()  # input untouched


def test_bad_arguments():
    with pytest.raises(One4DInputError, match="mode"):
        flying_point_mask(step_depth(), mode="sideways")
    with pytest.raises(One4DInputError, match="expected"):
        flying_point_mask(np.zeros((2, 2, 2, 2), np.float32))
