"""Window planning, Sim(3) alignment and stitching of long pointmap videos."""
from __future__ import annotations

import numpy as np
import pytest

from one4d.errors import One4DInputError
from one4d.geometry import Sim3, make_sequence, plan_windows, recover_cameras, robust_umeyama, stitch_windows, umeyama
from one4d.evaluation.metrics import ate


def random_sim3(rng: np.random.Generator, scale_range=(0.3, 3.0)) -> Sim3:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    R = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    return Sim3(float(np.exp(rng.uniform(*np.log(scale_range)))), R, rng.normal(scale=5.0, size=3))


@pytest.mark.parametrize(
    "n,window,overlap",
    [(200, 33, 8), (200, 81, 16), (81, 81, 16), (82, 81, 16), (10, 81, 16), (97, 17, 4), (5, 2, 1)],
)
def test_plan_windows_cover_with_overlap(n, window, overlap):
    spans = plan_windows(n, window, overlap)
    assert spans[0][0] == 0 and spans[-1][1] == n
    for a, b in spans:
        assert b - a == min(window, n)
    for (a0, b0), (a1, b1) in zip(spans, spans[1:]):
        assert a0 < a1 and b0 - a1 >= overlap  # consecutive windows share >= overlap frames
    covered = np.zeros(n, bool)
    for a, b in spans:
        covered[a:b] = True
    assert covered.all()


def test_plan_windows_hand_case():
    assert plan_windows(200, 81, 16) == [(0, 81), (65, 146), (119, 200)]
    assert plan_windows(50, 81, 16) == [(0, 50)]


@pytest.mark.parametrize("args", [(0, 81, 16), (100, 81, 0), (100, 81, 81), (100, 1, 0)])
def test_plan_windows_rejects_bad_arguments(args):
    with pytest.raises(One4DInputError):
        plan_windows(*args)


def test_umeyama_recovers_a_random_sim3_exactly():
    rng = np.random.default_rng(0)
    T = random_sim3(rng)
    src = rng.normal(size=(100, 3))
    est = umeyama(src, T.apply(src))
    assert abs(est.scale - T.scale) < 1e-9
    assert np.allclose(est.rotation, T.rotation, atol=1e-9)
    assert np.allclose(est.translation, T.translation, atol=1e-8)
    assert np.linalg.det(est.rotation) > 0
    # composition and inverse
    assert np.allclose(T.inverse().apply(T.apply(src)), src, atol=1e-9)
    U = random_sim3(rng)
    assert np.allclose(T.compose(U).apply(src), T.apply(U.apply(src)), atol=1e-8)
    assert np.allclose(T.matrix() @ np.append(src[0], 1.0), np.append(T.apply(src[:1])[0], 1.0))


def test_robust_umeyama_ignores_a_third_of_wrong_pairs():
    rng = np.random.default_rng(1)
    T = random_sim3(rng)
    src = rng.normal(size=(600, 3))
    dst = T.apply(src) + rng.normal(scale=1e-3, size=(600, 3))
    bad = rng.random(600) < 0.3
    dst[bad] = rng.normal(scale=10.0, size=(bad.sum(), 3))
    plain = umeyama(src, dst)
    est, weights = robust_umeyama(src, dst)
    assert abs(est.scale / T.scale - 1) < 2e-3 and np.abs(est.rotation - T.rotation).max() < 2e-3
    assert abs(plain.scale / T.scale - 1) > 0.05  # least squares alone is ruined
    assert weights[bad].mean() < 0.1 * weights[~bad].mean()


def test_umeyama_rejects_degenerate_input():
    with pytest.raises(One4DInputError, match="zero extent"):
        umeyama(np.ones((10, 3)), np.random.default_rng(0).normal(size=(10, 3)))
    with pytest.raises(One4DInputError, match="same shape"):
        umeyama(np.zeros((10, 3)), np.zeros((9, 3)))
    with pytest.raises(One4DInputError, match="at least 3"):
        umeyama(np.full((10, 3), np.nan), np.zeros((10, 3)))


@pytest.fixture(scope="module")
def long_sequence():
    return make_sequence(frames=200, height=24, width=40, focal=0.9, path="handheld", seed=11)


def cut_windows(seq, spans, rng, noise=0.0, outlier_window=None):
    """Per-window pointmaps, each in its own random Sim(3); one window gets 10% garbage points."""
    windows, truths = [], []
    garbage = np.zeros(seq.points.shape[:3], bool)
    for k, (a, b) in enumerate(spans):
        T = random_sim3(rng)
        pts = seq.points[a:b].astype(np.float64)
        if noise:
            pts = pts + rng.normal(scale=noise, size=pts.shape) * seq.depth[a:b, ..., None]
        if k == outlier_window:
            bad = rng.random(pts.shape[:3]) < 0.1
            pts[bad] = rng.normal(scale=5.0, size=(bad.sum(), 3))
            garbage[a:b] |= bad
        windows.append(T.apply(pts).astype(np.float32))
        truths.append(T)
    return windows, truths, garbage


def test_stitching_200_frames_returns_to_ground_truth(long_sequence):
    seq = long_sequence
    spans = plan_windows(200, 33, 8)
    rng = np.random.default_rng(2)
    windows, truths, garbage = cut_windows(seq, spans, rng, noise=0.005, outlier_window=3)
    res = stitch_windows(windows, spans)
    assert res.points.shape == seq.points.shape and res.valid.mean() > 0.99
    # Up to one global Sim(3) (the world is window 0's own frame), points match the ground truth.
    good = res.valid & ~garbage
    G = umeyama(res.points[good], seq.points[good])
    rel_rms = np.sqrt(np.mean(np.sum((G.apply(res.points[good]) - seq.points[good]) ** 2, -1)))
    extent = np.ptp(seq.points.reshape(-1, 3), axis=0).max()
    assert rel_rms / extent < 0.01
    # each window's transform undoes its random Sim(3) up to the same global gauge
    for T, truth in zip(res.transforms, truths):
        chain = G.compose(T).compose(truth)
        assert abs(chain.scale - 1) < 0.01 and np.abs(chain.rotation - np.eye(3)).max() < 0.01
    # cameras recovered from the stitched pointmap: ATE relative to the trajectory's extent
    est = recover_cameras(res.points, res.valid, iters=30)  # garbage included: its outlier test copes
    traj_extent = np.ptp(seq.c2w[:, :3, 3], axis=0).max()
    assert ate(est.c2w, seq.c2w) / traj_extent < 0.01
    assert ate(est.c2w, seq.c2w) / extent < 0.01


def test_stitching_without_overlap_or_with_bad_shapes_fails_clearly(long_sequence):
    seq = long_sequence
    with pytest.raises(One4DInputError, match="shares no frame"):
        stitch_windows([seq.points[:10], seq.points[10:20]], [(0, 10), (10, 20)])
    with pytest.raises(One4DInputError, match="covers"):
        stitch_windows([seq.points[:10]], [(0, 12)])
    with pytest.raises(One4DInputError, match="one \\(start, stop\\) span per window"):
        stitch_windows([seq.points[:10]], [])
    with pytest.raises(One4DInputError, match="covered by no window"):
        stitch_windows([seq.points[2:10]], [(2, 10)])


def test_single_window_is_returned_unchanged(long_sequence):
    pts = long_sequence.points[:9]
    res = stitch_windows([pts], [(0, 9)])
    assert np.array_equal(res.points, pts) and res.valid.all() and res.overlap_error == [0.0]
