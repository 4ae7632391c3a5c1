"""Pointmap normalization is invertible, lands in [-1, 1] and rejects degenerate input."""
from __future__ import annotations

import numpy as np
import pytest

from one4d.errors import One4DInputError
from one4d.pointmap import Normalization, denormalize, fit_normalization, normalize


def test_round_trip_and_range():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(5, 8, 8, 3)).astype(np.float32) + np.array([0, 0, 4], np.float32)
    norm = fit_normalization(pts)
    n = normalize(pts, norm)
    assert n.min() >= -1 and n.max() <= 1
    inside = (np.abs(n) < 1).all(-1)
    assert inside.mean() > 0.9
    np.testing.assert_allclose(denormalize(n, norm)[inside], pts[inside], atol=1e-5)
    assert Normalization.from_dict(norm.to_dict()) == norm


def test_invalid_points_are_ignored_and_zeroed():
    pts = np.ones((2, 4, 4, 3), np.float32)
    pts[..., 2] = np.linspace(1, 3, 32).reshape(2, 4, 4)
    pts[0, 0, 0] = np.nan
    valid = np.ones((2, 4, 4), bool)
    valid[1, 3, 3] = False
    pts[1, 3, 3] = 1e9
    norm = fit_normalization(pts, valid)
    assert np.isfinite(norm.scale) and norm.scale < 10
    assert np.all(normalize(pts, norm)[0, 0, 0] == 0)


@pytest.mark.parametrize(
    ("pts", "message"),
    [
        (np.full((2, 4, 4, 3), np.nan, np.float32), "no valid"),
        (np.ones((2, 4, 4, 3), np.float32), "zero extent"),
        (np.ones((4, 4, 3), np.float32), "\\[F, H, W, 3\\]"),
    ],
)
def test_degenerate_pointmaps_raise(pts, message):
    with pytest.raises(One4DInputError, match=message):
        fit_normalization(pts)
