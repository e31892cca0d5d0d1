"""What the plots draw, without Qt: series specs, the history cache, min/max loading in workers, CSV."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_desktop.gui.growing import GrowingHistory
from mlops_desktop.tracking.entities import MetricHistory

log = logging.getLogger(__name__)

# Re-query when the zoom changed by more than this factor since the last fetch (buckets then span <= 1.6 px).
ZOOM_REQUERY = 1.6
X_MODES = {"step": "Step", "relative": "Relative time", "wall": "Wall time"}


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


class _Entry:
    """One cached series: the full history, plus what is derived from it on demand (sorted copies, pyramids,
    the last smoothing asked for). Derived data is dropped when the series grows."""

    __slots__ = ("count", "hist", "derived", "held", "growing")

    def __init__(self, count: int, hist: MetricHistory, growing: GrowingHistory | None = None) -> None:
        self.count = count
        self.hist = hist
        self.growing = growing  # the buffers a live series' history is a view of (growing.py)
        self.derived: dict[Any, Any] = {}
        self.held = False       # in the cache (its bytes counted) or already evicted

    def size_of(self, value: Any) -> int:
        if isinstance(value, MetricHistory):
            if value is self.hist:
                return 0
            return int(value.steps.nbytes + value.timestamps_ms.nbytes + value.values.nbytes)
        return int(getattr(value, "nbytes", 0))

    @property
    def nbytes(self) -> int:
        h = self.hist
        held = self.growing.nbytes if self.growing is not None else \
            int(h.steps.nbytes + h.timestamps_ms.nbytes + h.values.nbytes)
        return held + sum(
            self.size_of(v) for v in self.derived.values())


class HistoryCache:
    """Full-resolution histories of series (thread-safe, least recently used out first, bounded in bytes).

    Zooming then re-runs the min/max downsampling in memory (through a MinMaxPyramid: cost ~ pixels, not points)
    instead of reading and decoding every chunk again; a live series is extended with its new points only.
    """

    def __init__(self, max_bytes: int = 384 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def entry(self, uuid: str, key: str, count: int | None = None) -> _Entry | None:
        """The cached series; with ``count``, only if it holds exactly that many points (else it is stale)."""
        with self._lock:
            item = self._items.get((uuid, key))
            if item is None or (count is not None and item.count != count):
                return None
            self._items.move_to_end((uuid, key))
            return item

    def get(self, uuid: str, key: str, count: int) -> MetricHistory | None:
        item = self.entry(uuid, key, count)
        return None if item is None else item.hist

    def get_any(self, uuid: str, key: str) -> MetricHistory | None:
        """Whatever is held for the series, whatever its count (the prefix a live series grows from)."""
        item = self.entry(uuid, key)
        return None if item is None else item.hist

    def put(self, uuid: str, key: str, count: int, hist: MetricHistory, growing: GrowingHistory | None = None
            ) -> _Entry:
        entry = _Entry(count, hist, growing)
        with self._lock:
            old = self._items.pop((uuid, key), None)
            if old is not None:
                self._bytes -= old.nbytes
                old.held = False
            if entry.nbytes <= self.max_bytes:
                self._items[(uuid, key)] = entry
                self._bytes += entry.nbytes
                entry.held = True
            self._trim()
        return entry

    def derive(self, entry: _Entry, name: Any, make: Any) -> Any:
        """``entry.derived[name]``, made by ``make()`` once (and counted against the budget)."""
        value = entry.derived.get(name)
        if value is None:
            value = make()
            with self._lock:
                entry.derived[name] = value
                if entry.held:
                    self._bytes += entry.size_of(value)
                self._trim()
        return value

    def _trim(self) -> None:
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _key, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
            old.held = False

    def forget(self, keep: set[str]) -> None:
        """Drop the series of runs no longer shown (their memory comes back at once, not when evicted)."""
        with self._lock:
            for k in [k for k in self._items if k[0] not in keep]:
                old = self._items.pop(k)
                self._bytes -= old.nbytes
                old.held = False


def _sorted_by(hist: MetricHistory, x: str) -> MetricHistory:
    xs = hist.steps if x == "step" else hist.timestamps_ms
    if xs.shape[0] > 1 and not bool(np.all(xs[1:] >= xs[:-1])):
        order = np.argsort(xs, kind="stable")
        return MetricHistory(hist.key, hist.steps[order], hist.timestamps_ms[order], hist.values[order])
    return hist


@contextlib.contextmanager
def read_snapshot(store: Any) -> Iterator[None]:
    """Every read inside sees one committed state of the database (a deferred read transaction)."""
    db = getattr(store, "db", None)
    if db is None or not hasattr(db, "transaction"):
        yield
        return
    with db.transaction(immediate=False):
        yield


@dataclass(frozen=True)
class LoadProblem:
    """A series that could not be read, in words for the plot (the traceback of a bug goes to the log)."""

    message: str


@dataclass(frozen=True)
class SeriesRequest:
    """What one line of a plot needs: the window (plot coordinates, None = all), pixels, smoothing."""

    uuid: str
    key: str
    buckets: int
    x_mode: str = "step"
    lo: float | None = None
    hi: float | None = None
    start_time: float = 0.0
    count: int = 0
    live: bool = False
    smoothing: tuple[str, float] | None = None   # (kind, amount), see series_math.smooth
    drawn: int = -1     # points of the whole series the plot already shows for this same request (-1: none)


@dataclass
class SeriesData:
    """Downsampled points in plot coordinates; ``smoothed`` has one value per point (or is None)."""

    x: np.ndarray
    y: np.ndarray
    smoothed: np.ndarray | None = None
    total: int = 0          # points in the whole series
    unchanged: bool = False  # the series holds exactly the ``drawn`` points of the request: keep what is drawn


def load_many(store: Any, cache: HistoryCache | None, requests: list[SeriesRequest], *, progress: Any = None
              ) -> list[SeriesData | LoadProblem]:
    """Worker: every line of a plot in one task (one paint after, not one per line); a failure is per line."""
    from mlops_desktop.errors import MlopsError

    out: list[SeriesData | LoadProblem] = []
    for req in requests:
        try:
            out.append(load_series_data(store, req, cache))
        except MlopsError as exc:
            out.append(LoadProblem(str(exc)))
        except Exception:  # noqa: BLE001 - a bug: its traceback goes to the log, the plot says so in words
            log.exception("reading the series %s of run %s failed", req.key, req.uuid)
            out.append(LoadProblem("this series could not be read (the details are in the log)"))
    return out


def load_series_or_problem(*args: Any, progress: Any = None, **kwargs: Any) -> tuple[np.ndarray, np.ndarray] | LoadProblem:
    """``load_series``, with a failure given back as a LoadProblem (words) instead of an exception, so that no
    Python error text reaches the status bar; the plot says it in place and tries again on the next update."""
    from mlops_desktop.errors import MlopsError

    try:
        return load_series(*args, progress=progress, **kwargs)
    except MlopsError as exc:
        return LoadProblem(str(exc))
    except Exception:  # noqa: BLE001 - a bug: its traceback goes to the log, the plot says so in words
        log.exception("reading the series %s of run %s failed", args[2] if len(args) > 2 else "?",
                      args[1] if len(args) > 1 else "?")
        return LoadProblem("this series could not be read (the details are in the log)")


def load_series(store: Any, uuid: str, key: str, buckets: int, x_mode: str, lo: float | None, hi: float | None,
                start_time: float, cache: HistoryCache | None = None, count: int = 0, *, live: bool = False,
                progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Worker side (no Qt): the min/max-downsampled series in plot coordinates."""
    data = load_series_data(store, SeriesRequest(uuid, key, buckets, x_mode, lo, hi, start_time, count, live), cache)
    return data.x, data.y


def _full_history(store: Any, cache: HistoryCache, uuid: str, key: str, count: int, live: bool) -> _Entry:
    """The whole series from the cache; a live one is extended with only the points logged since the last read
    (``store.metric_history_tail``), so a growing million-point series costs its new points per update."""
    seen = cache.entry(uuid, key) if live else None
    if seen is not None and len(seen.hist) > 0:
        # live: always ask for what came after the points held (one small query when nothing did); the caller's
        # count comes from a summary read earlier and may already be stale. The tail read lists the chunks, then
        # fetches them: in one read snapshot, or a writer merging the tail chunk in between leaves it nothing to
        # fetch ("need at least one array to concatenate").
        with read_snapshot(store):
            tail = store.metric_history_tail(uuid, key, len(seen.hist))
        if len(tail) == 0:
            return seen
        full, buffers = GrowingHistory.grown(seen.hist, tail, seen.growing)   # copies the tail, not the series
        grown = cache.put(uuid, key, len(full), full, buffers)
        _carry_forward(seen, grown, tail)
        return grown
    cached = cache.entry(uuid, key, count)
    if cached is not None:
        return cached
    full = store.metric_history(uuid, key)
    return cache.put(uuid, key, len(full) if live else (count if len(full) == count else -1), full)


def _carry_forward(seen: _Entry, grown: _Entry, tail: MetricHistory) -> None:
    """What the grown series can reuse from its prefix: its order (when the new points follow on) and its
    pyramid (only the blocks with new points are computed), so a live update costs its new points."""
    from mlops_desktop.gui.series_math import MinMaxPyramid

    for axis, old_x, new_x in (("step", seen.hist.steps, tail.steps), ("time", seen.hist.timestamps_ms,
                                                                        tail.timestamps_ms)):
        if seen.derived.get(("sorted", axis)) is not seen.hist:
            continue   # the prefix was out of order on this axis: sort the whole series again
        if new_x.shape[0] and (new_x[0] < old_x[-1] or bool(np.any(new_x[1:] < new_x[:-1]))):
            continue
        grown.derived[("sorted", axis)] = grown.hist
        pyramid = seen.derived.get(("pyramid", axis))
        if pyramid is not None:
            grown.derived[("pyramid", axis)] = MinMaxPyramid(grown.hist.values, pyramid)


def load_series_data(store: Any, req: SeriesRequest, cache: HistoryCache | None = None) -> SeriesData:
    """Worker side (no Qt): one line, min/max-downsampled per pixel, smoothed over the full series if asked."""
    from mlops_desktop.gui.series_math import MinMaxPyramid, direct_indices, smooth

    x, x_min, x_max = to_store_range(req.x_mode, req.lo, req.hi, req.start_time)
    buckets = max(1, req.buckets)
    if cache is None or req.count <= 0:
        hist = store.metric_history_downsampled(req.uuid, req.key, buckets=buckets, x=x, x_min=x_min, x_max=x_max)
        smoothed = smooth(hist.values, *req.smoothing) if req.smoothing else None
        return SeriesData(x_values(hist, req.x_mode, req.start_time), hist.values.astype(np.float64, copy=False),
                          smoothed, len(hist))
    entry = _full_history(store, cache, req.uuid, req.key, req.count, req.live)
    if req.drawn >= 0 and len(entry.hist) == req.drawn:
        # a live refresh that found no new points: no downsampling, no new curve data, no repaint
        empty = np.zeros(0)
        return SeriesData(empty, empty, None, req.drawn, unchanged=True)
    full = cache.derive(entry, ("sorted", x), lambda: _sorted_by(entry.hist, x))
    xs = full.steps if x == "step" else full.timestamps_ms
    idx = direct_indices(xs, full.values, buckets, x_min, x_max)
    if idx is None:   # a large window: the pyramid (made once, extended as a live series grows) picks
        pyramid = cache.derive(entry, ("pyramid", x), lambda: MinMaxPyramid(full.values))
        idx = pyramid.indices(xs, buckets, x_min, x_max, full.values)
    smoothed = None
    if req.smoothing:
        kind, amount = req.smoothing
        values = full.values
        whole = smooth(values, kind, amount) if req.live else \
            cache.derive(entry, ("smooth", x, kind, amount), lambda: smooth(values, kind, amount))
        smoothed = whole[idx]
    hist = MetricHistory(req.key, full.steps[idx], full.timestamps_ms[idx], full.values[idx])
    return SeriesData(x_values(hist, req.x_mode, req.start_time), hist.values.astype(np.float64, copy=False),
                      smoothed, len(full))


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
