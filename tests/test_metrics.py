"""Depth and pose metrics: hand-computed cases and an independent ATE implementation."""
from __future__ import annotations

import numpy as np
import pytest

from one4d.errors import One4DInputError
from one4d.evaluation.metrics import (
    align_depth_median,
    align_depth_scale_shift,
    ate,
    depth_metrics,
    pose_metrics,
    rpe,
)


def test_median_alignment_hand_case():
    gt = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([1.0, 2.0, 3.0, 8.0])
    # medians 2.5 and 2.5 -> scale 1; AbsRel = (0 + 0 + 0 + 4/4) / 4; delta: 8/4 = 2 fails
    m = depth_metrics(pred, gt, alignment="median", max_depth=None)
    assert m["scale"] == pytest.approx(1.0)
    assert m["abs_rel"] == pytest.approx(0.25)
    assert m["delta_1_25"] == pytest.approx(0.75)
    assert m["pixels"] == 4


def test_median_alignment_removes_a_global_scale():
    gt = np.array([[1.0, 2.0], [4.0, 5.0]])
    aligned, s = align_depth_median(2.0 * gt, gt)
    assert s == pytest.approx(0.5) and np.allclose(aligned, gt)
    m = depth_metrics(10.0 * gt, gt, alignment="median")
    assert m["abs_rel"] == pytest.approx(0.0) and m["delta_1_25"] == 1.0


def test_scale_shift_hand_cases():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    gt = 2.0 * x + 1.0
    for fit in ("l1", "l2"):
        _, s, t = align_depth_scale_shift(x, gt, fit=fit)
        assert s == pytest.approx(2.0) and t == pytest.approx(1.0)
    # one gross outlier: least absolute deviation keeps the line through the other four points
    gt_bad = gt.copy()
    gt_bad[4] = 100.0
    _, s1, t1 = align_depth_scale_shift(x, gt_bad, fit="l1")
    _, s2, t2 = align_depth_scale_shift(x, gt_bad, fit="l2")
    assert s1 == pytest.approx(2.0, abs=1e-4) and t1 == pytest.approx(1.0, abs=1e-4)
    assert abs(s2 - 2.0) > 1.0  # least squares is pulled away
    m = depth_metrics(x, gt_bad, alignment="scale_shift", max_depth=None)
    # aligned = [3, 5, 7, 9, 11] vs gt [3, 5, 7, 9, 100]: AbsRel = (89 / 100) / 5, delta: 4 of 5
    assert m["abs_rel"] == pytest.approx(0.89 / 5, abs=1e-4)
    assert m["delta_1_25"] == pytest.approx(0.8)


def test_max_depth_valid_mask_and_clipping():
    gt = np.array([1.0, 2.0, 80.0, 3.0])
    pred = np.array([1.0, 2.0, 1.0, 6.0])
    valid = np.array([True, True, True, False])
    # the 80 m pixel is beyond max_depth=70, the last one is masked: two pixels remain, both exact
    m = depth_metrics(pred, gt, valid, alignment="none", max_depth=70.0)
    assert m["pixels"] == 2 and m["abs_rel"] == 0.0
    clipped = depth_metrics(np.array([1.0, 100.0]), np.array([1.0, 50.0]), alignment="none", post_clip_max=60.0)
    assert clipped["abs_rel"] == pytest.approx((0.0 + 10.0 / 50.0) / 2)
    # NaN predictions are ignored
    m = depth_metrics(np.array([np.nan, 2.0]), np.array([1.0, 2.0]), alignment="none")
    assert m["pixels"] == 1


def test_depth_metric_errors():
    with pytest.raises(One4DInputError, match="shape"):
        depth_metrics(np.ones(3), np.ones(4))
    with pytest.raises(One4DInputError, match="no pixel"):
        depth_metrics(np.ones(3), np.zeros(3))
    with pytest.raises(One4DInputError, match="alignment"):
        depth_metrics(np.ones(3), np.ones(3), alignment="affine")


def poses_from(centers, rotations=None):
    n = len(centers)
    c2w = np.tile(np.eye(4), (n, 1, 1))
    c2w[:, :3, 3] = centers
    if rotations is not None:
        c2w[:, :3, :3] = rotations
    return c2w


def rot_z(deg):
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])


def test_rpe_hand_case():
    centers = np.array([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0.5]])
    gt = poses_from(centers)
    # same centers (so the Sim(3) alignment is the identity); frame 1 turned by 90 degrees about z
    pred = poses_from(centers, [np.eye(3), rot_z(90), np.eye(3)])
    # pair (0,1): E = [Rz | 0] -> 90 deg, 0; pair (1,2): E = [Rz^T | (Rz^T - I)(1, 0, 0.5)] -> 90 deg,
    # |(0, -1, 0.5) - (1, 0, 0.5)| = sqrt(2); RMSE: rot 90, trans sqrt((0 + 2) / 2) = 1
    out = rpe(pred, gt)
    assert out["rpe_rot"] == pytest.approx(90.0)
    assert out["rpe_trans"] == pytest.approx(1.0)
    assert ate(pred, gt) == pytest.approx(0.0, abs=1e-12)


def random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    return quat_to_matrix(q)


def quat_to_matrix(q):
    w, x, y, z = q
    return np.array(
        [
            [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
        ]
    )


def horn_ate(pred_centers, gt_centers):
    """Independent ATE: Horn's (1987) quaternion absolute orientation, scale by the projection ratio."""
    a = pred_centers - pred_centers.mean(0)
    b = gt_centers - gt_centers.mean(0)
    S = a.T @ b  # S[i, j] = sum a_i b_j
    N = np.array(
        [
            [S[0, 0] + S[1, 1] + S[2, 2], S[1, 2] - S[2, 1], S[2, 0] - S[0, 2], S[0, 1] - S[1, 0]],
            [S[1, 2] - S[2, 1], S[0, 0] - S[1, 1] - S[2, 2], S[0, 1] + S[1, 0], S[2, 0] + S[0, 2]],
            [S[2, 0] - S[0, 2], S[0, 1] + S[1, 0], -S[0, 0] + S[1, 1] - S[2, 2], S[1, 2] + S[2, 1]],
            [S[0, 1] - S[1, 0], S[2, 0] + S[0, 2], S[1, 2] + S[2, 1], -S[0, 0] - S[1, 1] + S[2, 2]],
        ]
    )
    vals, vecs = np.linalg.eigh(N)
    R = quat_to_matrix(vecs[:, np.argmax(vals)])
    ra = a @ R.T
    s = np.sum(ra * b) / np.sum(a * a)
    err = s * ra - b
    return float(np.sqrt(np.mean(np.sum(err * err, axis=1))))


def test_ate_matches_an_independent_implementation():
    rng = np.random.default_rng(0)
    n = 40
    gt_centers = np.cumsum(rng.normal(size=(n, 3)), axis=0)
    gt = poses_from(gt_centers, [random_rotation(rng) for _ in range(n)])
    # prediction: unknown scale, rotation and offset, plus noise
    R = random_rotation(rng)
    pred_centers = 0.37 * gt_centers @ R.T + np.array([3.0, -1.0, 2.0]) + rng.normal(scale=0.2, size=(n, 3))
    pred = poses_from(pred_centers, [R @ g[:3, :3] for g in gt])
    expected = horn_ate(pred_centers, gt_centers)
    assert expected > 0.1
    assert ate(pred, gt) == pytest.approx(expected, rel=1e-9)
    # exact Sim(3) copies give zero error on every metric
    clean = poses_from(0.37 * gt_centers @ R.T + 1.0, [R @ g[:3, :3] for g in gt])
    m = pose_metrics(clean, gt)
    assert set(m) == {"ate", "rpe_trans", "rpe_rot"}
    assert m["ate"] < 1e-9 and m["rpe_trans"] < 1e-9 and m["rpe_rot"] < 1e-5


def test_static_prediction_and_bad_poses():
    gt = poses_from(np.array([[0.0, 0, 0], [1.0, 0, 0], [2.0, 0, 0]]))
    static = poses_from(np.zeros((3, 3)))
    # no scale can be fitted: the centroid is matched, ATE = spread of the ground truth
    assert ate(static, gt) == pytest.approx(np.sqrt(2.0 / 3.0))
    with pytest.raises(One4DInputError, match="pred_c2w"):
        ate(np.zeros((2, 4, 4)), gt)
    with pytest.raises(One4DInputError, match="at least 2 frames"):
        rpe(gt[:1], gt[:1])
