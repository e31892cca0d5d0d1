"""Series arithmetic for the plots, without Qt: a min/max pyramid for fast re-queries, smoothing, group bands.

``MinMaxPyramid`` keeps, for blocks of 2**L points (L >= 3), the index of each block's minimum and maximum. A
query over any x window then costs about the number of pixels, not the number of points: blocks about one pixel
wide are picked, and any block wider than a pixel (uneven x, e.g. wall time with pauses) is split until it fits,
down to the raw points. Every pixel column keeps its extremes, so a single spike among millions stays visible,
exactly as with ``tracking.downsample.minmax_indices`` (which a live, growing series still uses).
"""

from __future__ import annotations

import math

import numpy as np

BASE_LEVEL = 3          # blocks of 8 points are the finest level kept (smaller ones are scanned raw)
# A window of up to this many points is reduced to its pixel columns' extremes point by point: exact, and (a
# live series' usual size) cheaper than building, extending and walking a pyramid for it.
DIRECT_UP_TO = 16_384
SMOOTHING_KINDS = {"ema": "EMA", "mean": "Running mean"}


class MinMaxPyramid:
    """Argmin/argmax per block at levels BASE_LEVEL.. (int32 indices: about 2 bytes per point in all)."""

    def __init__(self, values: np.ndarray, previous: MinMaxPyramid | None = None) -> None:
        """With ``previous`` (the pyramid of a prefix of ``values``: a live series that grew), only the blocks
        holding new points are computed: an update costs its new points, not the whole series."""
        self.n = int(values.shape[0])
        self.levels: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.top = BASE_LEVEL
        if self.n == 0:
            return
        size = 1 << BASE_LEVEL
        keep = 0 if previous is None or previous.n > self.n else previous.n // size   # whole, unchanged blocks
        start = keep * size
        part = values[start:]
        blocks = -(-(self.n - start) // size)
        pad = blocks * size - (self.n - start)
        lo_p = np.concatenate((np.where(np.isnan(part), np.inf, part), np.full(pad, np.inf))).reshape(blocks, size)
        hi_p = np.concatenate((np.where(np.isnan(part), -np.inf, part), np.full(pad, -np.inf))).reshape(blocks, size)

        def lo(idx: np.ndarray) -> np.ndarray:
            v = values[idx]
            return np.where(np.isnan(v), np.inf, v)

        def hi(idx: np.ndarray) -> np.ndarray:
            v = values[idx]
            return np.where(np.isnan(v), -np.inf, v)

        base = start + np.arange(blocks, dtype=np.int64) * size
        amin = (base + np.argmin(lo_p, axis=1)).astype(np.int32)
        amax = (base + np.argmax(hi_p, axis=1)).astype(np.int32)
        if keep and previous is not None:
            old_min, old_max = previous.levels[BASE_LEVEL]
            amin = np.concatenate((old_min[:keep], amin))
            amax = np.concatenate((old_max[:keep], amax))
        level = BASE_LEVEL
        self.levels[level] = (amin, amax)
        while amin.shape[0] > 1:
            keep //= 2   # parents of unchanged pairs are unchanged
            if amin.shape[0] % 2:
                amin = np.append(amin, amin[-1])
                amax = np.append(amax, amax[-1])
            a0, a1 = amin[2 * keep::2], amin[2 * keep + 1::2]
            new_min = np.where(lo(a1) < lo(a0), a1, a0)
            b0, b1 = amax[2 * keep::2], amax[2 * keep + 1::2]
            new_max = np.where(hi(b1) > hi(b0), b1, b0)
            level += 1
            if keep and previous is not None and level in previous.levels:
                old_min, old_max = previous.levels[level]
                new_min = np.concatenate((old_min[:keep], new_min))
                new_max = np.concatenate((old_max[:keep], new_max))
            amin, amax = new_min, new_max
            self.levels[level] = (amin, amax)
        self.top = level

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes for a, b in self.levels.values())

    def indices(self, x: np.ndarray, buckets: int, x_min: float | None = None, x_max: float | None = None,
                y: np.ndarray | None = None) -> np.ndarray:
        """Points to draw for the window, in x order (x sorted ascending, len(x) == n).

        With ``y`` (the values), the candidates are reduced to the minimum and maximum of each pixel column:
        two points per column, which is what a 1 px line can show (Qt's drawing time grows with the points per
        column, as each is a vertical stroke through the band)."""
        n = self.n
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        i0, i1 = window_bounds(x, x_min, x_max)
        count = i1 - i0
        if count <= max(4 * buckets, 8):
            return np.arange(i0, i1, dtype=np.int64)
        pixel = (float(x[i1 - 1]) - float(x[i0])) / max(1, buckets)
        level = min(self.top, max(BASE_LEVEL, int(math.floor(math.log2(count / buckets)))))
        size = 1 << level
        blocks = np.arange(i0 >> level, ((i1 - 1) >> level) + 1, dtype=np.int64)
        picked: list[np.ndarray] = [np.array([i0, i1 - 1], dtype=np.int64)]
        while blocks.size:
            first = blocks * size
            last = np.minimum(first + size, n) - 1
            wide = (x[last].astype(np.float64) - x[first].astype(np.float64)) > pixel
            keep = blocks[~wide]
            if keep.size:
                amin, amax = self.levels[level]
                picked += [amin[keep].astype(np.int64), amax[keep].astype(np.int64)]
            blocks = blocks[wide]
            if not blocks.size:
                break
            if level == BASE_LEVEL:   # still wider than a pixel at 8 points: draw those points as they are
                raw = (blocks[:, None] * size + np.arange(size)[None, :]).ravel()
                picked.append(raw[raw < n])
                break
            level -= 1
            size >>= 1
            blocks = np.concatenate((blocks * 2, blocks * 2 + 1))
            blocks = blocks[blocks * size < n]
        out = np.unique(np.concatenate(picked))
        out = out[(out >= i0) & (out < i1)]
        if y is None or out.shape[0] <= 2 * buckets:
            return out
        return _column_extremes(out, x, y, float(x[i0]), pixel, buckets)


def window_bounds(x: np.ndarray, x_min: float | None, x_max: float | None) -> tuple[int, int]:
    """[i0, i1) of the points of sorted ``x`` in the window, and one point either side (lines run to the edge)."""
    n = int(x.shape[0])
    i0 = 0 if x_min is None else int(np.searchsorted(x, x_min, side="left"))
    i1 = n if x_max is None else int(np.searchsorted(x, x_max, side="right"))
    return max(0, i0 - 1), min(n, i1 + 1)


def direct_indices(x: np.ndarray, y: np.ndarray, buckets: int, x_min: float | None = None,
                   x_max: float | None = None) -> np.ndarray | None:
    """What ``MinMaxPyramid.indices`` gives, computed from every point of a window of at most DIRECT_UP_TO
    points (None for a larger one: ask the pyramid). Exact: each column's own minimum and maximum."""
    i0, i1 = window_bounds(x, x_min, x_max)
    count = i1 - i0
    if count > DIRECT_UP_TO:
        return None
    idx = np.arange(i0, i1, dtype=np.int64)
    if count <= max(4 * buckets, 8):
        return idx
    pixel = (float(x[i1 - 1]) - float(x[i0])) / max(1, buckets)
    return _column_extremes(idx, x, y, float(x[i0]), pixel, buckets)


def _column_extremes(idx: np.ndarray, x: np.ndarray, y: np.ndarray, x0: float, pixel: float, buckets: int
                     ) -> np.ndarray:
    """Of the candidate points, the minimum and the maximum of each pixel column (and the window's two ends).

    ``idx`` ascends and ``x`` is sorted, so the columns come in runs: one pass of reductions over them, no
    sort (the first point that reaches a column's extreme is kept, as a stable sort would keep it)."""
    cols = np.clip(((x[idx].astype(np.float64) - x0) / max(pixel, 1e-300)).astype(np.int64), 0, buckets - 1)
    vals = y[idx]
    nan = np.isnan(vals)
    low = np.where(nan, np.inf, vals)
    high = np.where(nan, -np.inf, vals)
    starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]])
    lengths = np.diff(np.r_[starts, cols.shape[0]])
    keep = np.zeros(idx.shape[0], dtype=bool)
    keep[[0, -1]] = True
    for side, reduce in ((low, np.minimum), (high, np.maximum)):
        extreme = np.repeat(reduce.reduceat(side, starts), lengths)
        hits = np.flatnonzero(side == extreme)      # every column has one: its extreme is one of its values
        column = cols[hits]
        keep[hits[np.r_[True, column[1:] != column[:-1]]]] = True
    return idx[keep]


def smooth(values: np.ndarray, kind: str, amount: float) -> np.ndarray:
    """Smoothed values, one per input value (so the smoothed line never reaches past the last true point).

    ``ema``: debiased exponential moving average with weight ``amount`` in [0, 1) (TensorBoard's slider).
    ``mean``: trailing running mean over ``amount`` points (the first points average what exists so far).
    NaN and infinite values are kept where they are and skipped by the average.
    """
    if values.shape[0] == 0 or amount <= 0:
        return values
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    out = values.copy()
    v = values[finite]
    if v.shape[0] == 0:
        return out
    if kind == "mean":
        window = max(1, int(round(amount)))
        csum = np.concatenate(([0.0], np.cumsum(v)))
        idx = np.arange(1, v.shape[0] + 1)
        start = np.maximum(0, idx - window)
        out[finite] = (csum[idx] - csum[start]) / (idx - start)
        return out
    out[finite] = _ema(v, min(0.999, float(amount)))
    return out


def smooth_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard's smoothing slider); NaNs are carried through."""
    if weight <= 0 or values.shape[0] == 0:
        return values
    return smooth(values, "ema", weight)


def _ema(v: np.ndarray, w: float) -> np.ndarray:
    """Debiased EMA without a Python loop per point: closed form inside blocks, the state carried between them."""
    n = v.shape[0]
    out = np.empty(n, dtype=np.float64)
    # inside a block y_t = w^(t+1) * s + (1-w) * sum_k w^(t-k) v_k; w^-k must stay finite in float64
    block = max(1, min(4096, int(150 / max(1e-9, -math.log10(w))))) if w > 0 else n
    state = 0.0
    powers = w ** np.arange(1, block + 1)          # w^(t+1)
    inverse = w ** -np.arange(block, dtype=np.float64) if w > 0 else None
    for start in range(0, n, block):
        chunk = v[start:start + block]
        m = chunk.shape[0]
        if w == 0:
            out[start:start + m] = chunk
            continue
        assert inverse is not None
        acc = np.cumsum(chunk * inverse[:m]) * (powers[:m] / w)   # sum_k w^(t-k) v_k
        y = powers[:m] * state + (1 - w) * acc
        out[start:start + m] = y
        state = float(y[-1])
    debias = 1 - w ** np.arange(1, n + 1, dtype=np.float64)
    return out / np.where(debias > 0, debias, 1.0)


def group_band(series: list[tuple[np.ndarray, np.ndarray]], points: int = 400
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, min and max across runs on a common x grid (each run's value carried from its last point before
    each grid x, as W&B's grouped charts do). Grid x beyond a run's last point ignore that run."""
    series = [(x, y) for x, y in series if x.shape[0]]
    if not series:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    lo = min(float(x[0]) for x, _ in series)
    hi = max(float(x[-1]) for x, _ in series)
    grid = np.unique(np.concatenate([x for x, _ in series])) if sum(x.shape[0] for x, _ in series) <= points \
        else np.linspace(lo, hi, points)
    stack = np.full((len(series), grid.shape[0]), np.nan)
    for row, (x, y) in enumerate(series):
        idx = np.searchsorted(x, grid, side="right") - 1
        inside = (idx >= 0) & (grid <= x[-1])
        stack[row, inside] = y[idx[inside]]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN column: no run covers that x
            mean = np.nanmean(stack, axis=0)
            vmin = np.nanmin(stack, axis=0)
            vmax = np.nanmax(stack, axis=0)
    return grid, mean, vmin, vmax
