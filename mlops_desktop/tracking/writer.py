"""The batching metric writer: log calls append to a deque (about a microsecond); a thread packs and flushes them."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlops_desktop.errors import StoreError
from mlops_desktop.tracking.store import MetricArrays

log = logging.getLogger(__name__)

Item = tuple[str, Any, "int | None", float]  # key, value, step, wall time in seconds


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def to_float64(values: list[Any] | tuple[Any, ...]) -> np.ndarray:
    """Python/numpy numbers and 0-d torch tensors (CPU or CUDA) to float64, with one device copy per device."""
    n = len(values)
    types = set(map(type, values))
    if types <= {float, int, bool}:
        return np.fromiter(values, dtype=np.float64, count=n)
    out = np.empty(n, dtype=np.float64)
    tensor_idx: dict[Any, list[int]] = {}
    for i, v in enumerate(values):
        if _is_torch_tensor(v):
            tensor_idx.setdefault(v.device, []).append(i)
        else:
            out[i] = float(v)
    if tensor_idx:
        import torch

        for _device, idx in tensor_idx.items():
            # one stack and one copy per flush: the host sync happens here, on the writer thread, not in training
            stacked = torch.stack([values[i].detach().reshape(()) for i in idx]).to(device="cpu",
                                                                                   dtype=torch.float64)
            out[np.asarray(idx)] = stacked.numpy()
    return out


class MetricWriter:
    """Collects (key, value, step, time) items from any thread and writes them through ``write_fn`` in batches."""

    def __init__(self, write_fn: Callable[[dict[str, MetricArrays]], None], interval: float = 0.1,
                 first_steps: dict[str, int] | None = None, name: str = "mlops-metric-writer") -> None:
        self._write_fn = write_fn
        self._interval = interval
        self._queue: deque[Item] = deque()
        self.append = self._queue.append  # the hot path: a bound C method, no Python frame
        self._next_step: dict[str, int] = {k: v + 1 for k, v in (first_steps or {}).items()}
        self._retry: dict[str, MetricArrays] = {}
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_error: BaseException | None = None
        self.points_written = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except StoreError as exc:  # the environment: the points stay queued
                if self.last_error is None or str(exc) != str(self.last_error):
                    print(f"mlops-desktop: metrics not written yet, will retry: {exc}", file=sys.stderr)
                self.last_error = exc
                time.sleep(min(1.0, self._interval * 5))
            except BaseException as exc:  # noqa: BLE001 - reported at flush()/close(), never kills the thread
                print(f"mlops-desktop: dropped a batch of metrics: {exc}", file=sys.stderr)
                self.last_error = exc

    def pending(self) -> int:
        return len(self._queue) + sum(len(v[0]) for v in self._retry.values())

    def flush(self) -> int:
        """Write everything queued so far; raises the store's error if it cannot (the points stay queued)."""
        with self._flush_lock:
            series = self._drain()
            if not series:
                return 0
            try:
                self._write_fn(series)
            except StoreError:
                # the environment (disk full, lock, read-only): keep the points and try again later
                self._retry = {k: (s, t, v) for k, (s, t, v) in series.items()}
                raise
            except BaseException:
                self._retry = {}  # bad data would fail forever: report it once and drop that batch
                raise
            self._retry = {}
            self.last_error = None
            n = sum(len(v[2]) for v in series.values())
            self.points_written += n
            return n

    def _drain(self) -> dict[str, MetricArrays]:
        queue = self._queue
        count = len(queue)
        series: dict[str, MetricArrays] = {}
        for key, (s, t, v) in self._retry.items():
            series[key] = (s, t, v)
        if count == 0:
            return series
        popleft = queue.popleft
        items = [popleft() for _ in range(count)]
        keys, values, steps, times = zip(*items, strict=True)
        distinct = set(keys)
        groups: dict[str, list[int] | None]
        if len(distinct) == 1:
            groups = {keys[0]: None}
        else:
            groups = {}
            for i, k in enumerate(keys):
                group = groups.setdefault(k, [])
                assert group is not None
                group.append(i)
        for key, idx in groups.items():
            k_values: Sequence[Any]
            k_steps: Sequence[Any]
            k_times: Sequence[Any]
            if idx is None:
                k_values, k_steps, k_times = values, steps, times
            else:
                k_values = [values[i] for i in idx]
                k_steps = [steps[i] for i in idx]
                k_times = [times[i] for i in idx]
            try:
                vals = to_float64(k_values)
            except (TypeError, ValueError, RuntimeError) as exc:
                # e.g. a tensor with more than one element: drop this key's points, keep every other key's
                print(f"mlops-desktop: metric {key!r}: dropped {len(k_values)} value(s) that are not numbers or "
                      f"0-d tensors ({exc})", file=sys.stderr)
                continue
            # seconds to ms, rounded: a timestamp given in ms comes back exactly (1.7e12 * 0.001 * 1000 is not)
            ts = np.rint(np.fromiter(k_times, dtype=np.float64, count=len(k_times)) * 1000.0).astype(np.int64)
            st = self._resolve_steps(key, k_steps)
            if key in series:
                old = series[key]
                series[key] = (np.concatenate((old[0], st)), np.concatenate((old[1], ts)),
                               np.concatenate((old[2], vals)))
            else:
                series[key] = (st, ts, vals)
        return series

    def _resolve_steps(self, key: str, steps: list[Any] | tuple[Any, ...]) -> np.ndarray:
        n = len(steps)
        if None not in steps:
            arr = np.fromiter(steps, dtype=np.int64, count=n)
        else:
            # step omitted: continue after the last step of this key (W&B-style auto-increment)
            arr = np.empty(n, dtype=np.int64)
            nxt = self._next_step.get(key, 0)
            for i, s in enumerate(steps):
                if s is None:
                    arr[i] = nxt
                else:
                    arr[i] = s
                nxt = int(arr[i]) + 1
        if n:
            self._next_step[key] = max(self._next_step.get(key, 0), int(arr.max()) + 1)
        return arr

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread and write what is left; raises if the last points cannot be written."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.flush()
                return
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
