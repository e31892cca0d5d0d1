"""Series arithmetic (no Qt): the min/max pyramid keeps every pixel's extremes; smoothing never runs past the data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlops_desktop.gui.series_math import MinMaxPyramid, group_band, smooth


def reference_ema(values, weight):
    out, last, k = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        k += 1
        out.append(last / (1 - weight ** k))
    return np.array(out)


def pixel_extremes(x, y, lo, hi, buckets):
    """Per pixel column of [lo, hi]: (min, max) of the points in it, NaN when empty."""
    edges = np.linspace(lo, hi, buckets + 1)
    col = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, buckets - 1)
    inside = (x >= lo) & (x <= hi)
    mins = np.full(buckets, np.inf)
    maxs = np.full(buckets, -np.inf)
    np.minimum.at(mins, col[inside], y[inside])
    np.maximum.at(maxs, col[inside], y[inside])
    return mins, maxs


@pytest.mark.parametrize("uneven", [False, True], ids=["steps", "wall-time-with-pauses"])
def test_pyramid_keeps_every_pixel_extreme(uneven):
    rng = np.random.default_rng(3)
    n = 300_001
    x = np.arange(n, dtype=np.float64)
    if uneven:  # bursts and long pauses, as wall time of a run that stops and resumes
        x = np.cumsum(np.where(rng.random(n) < 0.001, 5000.0, rng.exponential(1.0, n)))
    y = rng.normal(0, 1, n)
    y[123_457] = 50.0
    y[7] = -40.0
    pyramid = MinMaxPyramid(y)
    for lo, hi, buckets in ((None, None, 1000), (x[1000], x[250_000], 800), (x[123_000], x[124_000], 640)):
        idx = pyramid.indices(x, buckets, lo, hi, y)
        assert np.all(np.diff(idx) > 0), "x order, no duplicates"
        assert idx.shape[0] <= 2 * buckets + 2, "two points per pixel column"
        a = x[0] if lo is None else lo
        b = x[-1] if hi is None else hi
        want_min, want_max = pixel_extremes(x, y, a, b, buckets)
        got_min, got_max = pixel_extremes(x[idx], y[idx], a, b, buckets)
        # blocks are at most a pixel wide, so each column's extremes are drawn in it or a neighbour
        near_max = np.maximum(np.maximum(got_max, np.roll(got_max, 1)), np.roll(got_max, -1))
        near_min = np.minimum(np.minimum(got_min, np.roll(got_min, 1)), np.roll(got_min, -1))
        filled = np.isfinite(want_max)
        assert np.all(near_max[filled] >= want_max[filled]) and np.all(near_min[filled] <= want_min[filled])
        assert got_max.max() == want_max.max() and got_min.min() == want_min.min()
    assert 50.0 in y[pyramid.indices(x, 200)].tolist() and -40.0 in y[pyramid.indices(x, 200)].tolist()


def test_pyramid_small_windows_keep_every_point_and_nan_blocks():
    y = np.arange(1000, dtype=np.float64)
    y[100:300] = np.nan
    x = np.arange(1000, dtype=np.float64)
    pyramid = MinMaxPyramid(y)
    assert pyramid.indices(x, 400, 10, 500).tolist() == list(range(9, 502))
    idx = pyramid.indices(x, 20)
    assert idx[0] == 0 and idx[-1] == 999 and np.isfinite(y[idx]).sum() >= 30
    assert MinMaxPyramid(np.zeros(0)).indices(np.zeros(0), 10).shape == (0,)
    assert MinMaxPyramid(np.ones(5)).indices(np.arange(5.0), 10).tolist() == [0, 1, 2, 3, 4]


def test_ema_matches_the_point_by_point_definition():
    rng = np.random.default_rng(0)
    values = rng.normal(0, 1, 5000).cumsum()
    values[[10, 2000]] = np.nan
    values[3000] = np.inf
    for weight in (0.01, 0.5, 0.9, 0.99):
        got = smooth(values, "ema", weight)
        np.testing.assert_allclose(got, reference_ema(values.tolist(), weight), rtol=1e-9, atol=1e-9)
    assert smooth(values, "ema", 0.0) is values


def test_running_mean_is_trailing_and_ends_at_the_last_point():
    values = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0])
    out = smooth(values, "mean", 3)
    assert out.shape == values.shape
    assert out[:3].tolist() == [1.0, 1.5, 2.0]
    assert np.isnan(out[3]) and out[4] == pytest.approx((2 + 3 + 5) / 3) and out[5] == pytest.approx((3 + 5 + 6) / 3)


def test_group_band_mean_min_max_across_runs():
    a = (np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    b = (np.array([0.0, 1.0]), np.array([3.0, 4.0]))
    x, mean, lo, hi = group_band([a, b])
    assert x.tolist() == [0.0, 1.0, 2.0]
    assert mean.tolist() == [2.0, 3.0, 3.0] and lo.tolist() == [1.0, 2.0, 3.0] and hi.tolist() == [3.0, 4.0, 3.0]
