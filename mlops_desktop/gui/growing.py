"""A live series' full history in buffers with room to grow, so that adding its new points copies only them.

The history cache (plot_data.py) used to build each grown series with three `np.concatenate`s: a million-point
series copied 24 MB for every live refresh (~6 ms of a worker), whatever the handful of points that came. Here the
arrays of the history are views of the first `filled` entries of buffers whose capacity doubles; points are
written after them, never over them, so every view handed out earlier (the series as it was) keeps its values.
Only the holder of the newest view may write: two refreshes growing the same older view would otherwise write
different tails into the same slots, so the second one copies instead.
"""

from __future__ import annotations

import threading

import numpy as np

from mlops_desktop.tracking.entities import MetricHistory

MIN_CAPACITY = 1024


class GrowingHistory:
    __slots__ = ("key", "_steps", "_times", "_values", "filled", "_lock")

    def __init__(self, key: str, capacity: int) -> None:
        self.key = key
        self._steps = np.empty(capacity, dtype=np.int64)
        self._times = np.empty(capacity, dtype=np.int64)
        self._values = np.empty(capacity, dtype=np.float64)
        self.filled = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return int(self._values.shape[0])

    @property
    def nbytes(self) -> int:
        return int(self._steps.nbytes + self._times.nbytes + self._values.nbytes)

    @classmethod
    def grown(cls, prefix: MetricHistory, tail: MetricHistory, holder: GrowingHistory | None = None
              ) -> tuple[MetricHistory, GrowingHistory]:
        """prefix + tail, and the buffers it lives in. With `holder` (the buffers `prefix` is a view of), the tail
        is written after it when it is the newest view and there is room; else everything goes into new buffers."""
        n, t = len(prefix), len(tail)
        if holder is not None:
            with holder._lock:
                if holder.filled == n and n + t <= holder.capacity and holder._views(prefix):
                    holder._put(n, tail)
                    holder.filled = n + t
                    return holder.view(n + t), holder
        fresh = cls(prefix.key, max(MIN_CAPACITY, 2 * (n + t)))
        fresh._put(0, prefix)
        fresh._put(n, tail)
        fresh.filled = n + t
        return fresh.view(n + t), fresh

    def view(self, length: int) -> MetricHistory:
        return MetricHistory(self.key, self._steps[:length], self._times[:length], self._values[:length])

    def _views(self, hist: MetricHistory) -> bool:
        return len(hist) == 0 or hist.values.base is self._values

    def _put(self, at: int, hist: MetricHistory) -> None:
        end = at + len(hist)
        self._steps[at:end] = hist.steps
        self._times[at:end] = hist.timestamps_ms
        self._values[at:end] = hist.values
