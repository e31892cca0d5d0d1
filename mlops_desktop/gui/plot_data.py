"""What the plots draw, without Qt: series specs, the history cache, min/max loading in workers, smoothing, CSV."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_desktop.tracking.entities import MetricHistory

# Re-query when the zoom changed by more than this factor since the last fetch (buckets then span <= 1.6 px).
ZOOM_REQUERY = 1.6
X_MODES = {"step": "Step", "relative": "Relative time (s)", "wall": "Wall time"}


@dataclass
class SeriesSpec:
    """One line: a run's metric, with what is needed to place it on the x axis."""

    uuid: str
    key: str
    label: str
    color: str
    start_time: float = 0.0   # run start (seconds) for relative time
    count: int = 0            # points the summary reported (a change means new data)
    live: bool = False        # the run is still logging: always ask the store


def smooth_ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard's smoothing slider); NaNs are carried through."""
    if weight <= 0 or values.shape[0] == 0:
        return values
    out = np.empty_like(values, dtype=np.float64)
    last, debias, k = 0.0, 0.0, 0
    for i, v in enumerate(values.tolist()):
        if v != v or math.isinf(v):
            out[i] = v
            continue
        last = last * weight + (1 - weight) * v
        k += 1
        debias = 1 - weight ** k
        out[i] = last / debias
    return out


def x_values(hist: MetricHistory, x_mode: str, start_time: float) -> np.ndarray:
    if x_mode == "step":
        return hist.steps.astype(np.float64)
    if x_mode == "relative":
        return (hist.timestamps_ms.astype(np.float64) - start_time * 1000.0) / 1000.0
    return hist.timestamps_ms.astype(np.float64) / 1000.0


def to_store_range(x_mode: str, lo: float | None, hi: float | None, start_time: float
                   ) -> tuple[str, float | None, float | None]:
    """Map a range in plot coordinates to the store's x ('step' or 'time' in ms)."""
    if x_mode == "step":
        return "step", lo, hi
    offset = start_time * 1000.0 if x_mode == "relative" else 0.0
    return ("time", None if lo is None else lo * 1000.0 + offset, None if hi is None else hi * 1000.0 + offset)


class HistoryCache:
    """Full-resolution histories of series (thread-safe, least recently used out first).

    Zooming then re-runs the same min/max downsampling (tracking.downsample) in memory instead of reading and
    decoding every chunk again; a live series is extended with its new points only.
    """

    def __init__(self, max_points: int = 12_000_000) -> None:
        self.max_points = max_points
        self._items: OrderedDict[tuple[str, str], tuple[int, MetricHistory]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uuid: str, key: str, count: int) -> MetricHistory | None:
        with self._lock:
            item = self._items.get((uuid, key))
            if item is None or item[0] != count:
                return None
            self._items.move_to_end((uuid, key))
            return item[1]

    def get_any(self, uuid: str, key: str) -> MetricHistory | None:
        """Whatever is held for the series, whatever its count (the prefix a live series grows from)."""
        with self._lock:
            item = self._items.get((uuid, key))
            return None if item is None else item[1]

    def put(self, uuid: str, key: str, count: int, hist: MetricHistory) -> None:
        if len(hist) > self.max_points:
            return
        with self._lock:
            self._items[(uuid, key)] = (count, hist)
            self._items.move_to_end((uuid, key))
            while sum(len(h) for _c, h in self._items.values()) > self.max_points:
                self._items.popitem(last=False)


def _sorted_by(hist: MetricHistory, x: str) -> MetricHistory:
    xs = hist.steps if x == "step" else hist.timestamps_ms
    if xs.shape[0] > 1 and not bool(np.all(xs[1:] >= xs[:-1])):
        order = np.argsort(xs, kind="stable")
        return MetricHistory(hist.key, hist.steps[order], hist.timestamps_ms[order], hist.values[order])
    return hist


def load_series(store: Any, uuid: str, key: str, buckets: int, x_mode: str, lo: float | None, hi: float | None,
                start_time: float, cache: HistoryCache | None = None, count: int = 0, *, live: bool = False,
                progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Worker side (no Qt): the min/max-downsampled series in plot coordinates.

    With a cache, a finished series is read once; a live one is extended with only the points logged since the
    last read (``store.metric_history_tail``), so a growing million-point series costs its new points per update.
    """
    from mlops_desktop.tracking.downsample import minmax_indices

    x, x_min, x_max = to_store_range(x_mode, lo, hi, start_time)
    if cache is None or count <= 0:
        hist = store.metric_history_downsampled(uuid, key, buckets=buckets, x=x, x_min=x_min, x_max=x_max)
    else:
        seen = cache.get_any(uuid, key) if live else None
        if seen is not None and len(seen) > 0:
            # live: always ask for what came after the points held (one small query when nothing did); the
            # caller's count comes from a summary read earlier and may already be stale
            tail = store.metric_history_tail(uuid, key, len(seen))
            full = seen if len(tail) == 0 else MetricHistory(
                key, np.concatenate((seen.steps, tail.steps)), np.concatenate((seen.timestamps_ms, tail.timestamps_ms)),
                np.concatenate((seen.values, tail.values)))
            if len(tail):
                cache.put(uuid, key, len(full), full)
        else:
            cached = cache.get(uuid, key, count)
            if cached is not None:
                full = cached
            else:
                full = store.metric_history(uuid, key)
                cache.put(uuid, key, len(full) if live else (count if len(full) == count else -1), full)
        full = _sorted_by(full, x)
        idx = minmax_indices(full.steps if x == "step" else full.timestamps_ms, full.values, max(1, buckets),
                             x_min, x_max)
        hist = MetricHistory(key, full.steps[idx], full.timestamps_ms[idx], full.values[idx])
    return x_values(hist, x_mode, start_time), hist.values.astype(np.float64, copy=False)


def export_csv(store: Any, series: list[tuple[str, str, str]], path: str, *, progress: Any) -> int:
    """Worker: write every point (full resolution) of (uuid, label, key) series to CSV; returns rows written."""
    import csv

    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["run", "run_name", "metric", "step", "timestamp_ms", "value"])
        for i, (uuid, label, key) in enumerate(series):
            progress.update(i / max(1, len(series)), f"{label} {key}")
            hist = store.metric_history(uuid, key)
            for s, t, v in zip(hist.steps.tolist(), hist.timestamps_ms.tolist(), hist.values.tolist(), strict=True):
                writer.writerow([uuid, label, key, s, t, repr(v)])
            rows += len(hist)
    return rows
