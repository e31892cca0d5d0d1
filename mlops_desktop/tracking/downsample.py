"""Min/max-per-bucket downsampling for plots: every bucket keeps its extreme points, so no spike is ever hidden."""

from __future__ import annotations

import numpy as np


def minmax_indices(x: np.ndarray, y: np.ndarray, buckets: int, x_min: float | None = None,
                   x_max: float | None = None) -> np.ndarray:
    """Indices of points to draw: first, min, max and last of each x-bucket, in x order, without duplicates.

    ``x`` must be sorted ascending. NaN values are skipped for min/max but a bucket of only NaNs keeps its first point.
    With at most 4 points per bucket on average nothing is dropped.
    """
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    lo = 0 if x_min is None else int(np.searchsorted(x, x_min, side="left"))
    hi = n if x_max is None else int(np.searchsorted(x, x_max, side="right"))
    # keep one point either side of the window so that lines run to the plot's edge
    lo = max(0, lo - 1)
    hi = min(n, hi + 1)
    if hi - lo <= max(4 * buckets, 8):
        return np.arange(lo, hi, dtype=np.int64)
    xs = x[lo:hi].astype(np.float64, copy=False)
    ys = y[lo:hi]
    start, stop = float(xs[0]), float(xs[-1])
    if stop == start:
        edges = np.array([0, hi - lo])
    else:
        bounds = np.linspace(start, stop, buckets + 1)[1:-1]
        edges = np.concatenate(([0], np.searchsorted(xs, bounds, side="left"), [hi - lo]))
    edges = np.unique(edges)
    starts = edges[:-1]
    lengths = np.diff(edges)
    starts = starts[lengths > 0]
    finite = np.where(np.isnan(ys), np.inf, ys)
    argmin = _segment_arg(finite, starts, np.minimum)
    finite_max = np.where(np.isnan(ys), -np.inf, ys)
    argmax = _segment_arg(finite_max, starts, np.maximum)
    ends = np.append(starts[1:], hi - lo) - 1
    picked = np.concatenate((starts, argmin, argmax, ends))
    picked = np.unique(picked)
    return picked + lo


def _segment_arg(values: np.ndarray, starts: np.ndarray, op: np.ufunc) -> np.ndarray:
    """Index of the first extreme (per ``op``) in each segment beginning at ``starts``."""
    reduced = op.reduceat(values, starts)
    seg_id = np.repeat(np.arange(starts.shape[0]), np.diff(np.append(starts, values.shape[0])))
    hit = values == reduced[seg_id]
    # first hit per segment; segments with all +-inf (only NaNs) fall back to their start
    idx = np.flatnonzero(hit)
    first = np.full(starts.shape[0], -1, dtype=np.int64)
    seg_of_hit = seg_id[idx]
    # reverse assignment so the earliest index wins
    first[seg_of_hit[::-1]] = idx[::-1]
    missing = first < 0
    first[missing] = starts[missing]
    return first


def downsample_minmax(x: np.ndarray, y: np.ndarray, buckets: int, x_min: float | None = None,
                      x_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    idx = minmax_indices(x, y, buckets, x_min, x_max)
    return x[idx], y[idx]
