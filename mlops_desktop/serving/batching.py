"""Adaptive batching: requests that arrive together are scored by one predict call, and each gets its own rows back.

One asyncio task per model drains a queue. The model runs on one thread of its own, so while it scores a batch
the event loop keeps reading requests for the next one: under load batches grow by themselves, and a lone caller
is never kept waiting (a batch leaves as soon as the model is free and no other request is being read). A batch
below `max_rows` waits at most `max_wait_ms` for requests that are still being read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mlops_desktop.registry.predictor import Predictor
from mlops_desktop.serving.config import BatchConfig
from mlops_desktop.serving.payloads import Parsed


class ModelFailed(Exception):  # noqa: N818 - carried to the caller, answered as an HTTP status
    """The model raised on a request's rows (after the batch was split to find whose rows it was)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Item:
    parsed: Parsed
    rows: int
    future: asyncio.Future[dict[str, Any]]
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class BatchStats:
    rows: int
    requests: int


class Batcher:
    def __init__(self, predictor: Predictor, config: BatchConfig, *, on_batch: Any = None) -> None:
        self.predictor = predictor
        self.config = config
        self.on_batch = on_batch  # callable(BatchStats, outputs) on the loop, after each successful model call
        self._queue: deque[_Item] = deque()
        self._queued_rows = 0
        self._reading = 0  # requests for this model whose body is still being read or parsed
        self._more: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
        self._closed = False

    # -- the app tells the batcher who is coming, so a batch does not wait for nobody
    def reading(self, delta: int) -> None:
        self._reading += delta
        if delta < 0 and self._more is not None:
            self._more.set()

    async def start(self) -> None:
        self._more = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def predict(self, parsed: Parsed) -> dict[str, Any]:
        """The model's outputs for exactly this request's rows."""
        if self._closed:
            raise RuntimeError("the server is shutting down")
        loop = asyncio.get_running_loop()
        rows = parsed.rows
        if not self.config.enabled:
            self._busy = True
            try:
                out = await loop.run_in_executor(self._executor, self._call, parsed.column_arrays())
            finally:
                self._busy = False
            if self.on_batch is not None:
                self.on_batch(BatchStats(rows, 1), out)
            return out
        future: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._queue.append(_Item(parsed, rows, future))
        self._queued_rows += rows
        assert self._more is not None
        self._more.set()
        return await future

    async def _run(self) -> None:
        assert self._more is not None
        loop = asyncio.get_running_loop()
        max_rows, max_wait = self.config.max_rows, self.config.max_wait_ms / 1000.0
        while True:
            if not self._queue:
                self._more.clear()
                if self._closed:
                    return
                await self._more.wait()
                continue
            # wait for the requests still being read, up to max_wait after the oldest queued one arrived
            deadline = self._queue[0].enqueued + max_wait
            while self._queued_rows < max_rows and self._reading > 0:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                self._more.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._more.wait(), remaining)
            batch = [self._queue.popleft()]
            taken = batch[0].rows
            while self._queue and taken + self._queue[0].rows <= max_rows:
                item = self._queue.popleft()
                batch.append(item)
                taken += item.rows
            self._queued_rows -= taken
            self._busy = True
            try:
                results, merged = await loop.run_in_executor(self._executor, self._score, batch)
            finally:
                self._busy = False
            for item, result in zip(batch, results, strict=True):
                if item.future.done():  # the caller went away (client disconnect, cancelled)
                    continue
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
            if self.on_batch is not None and merged is not None:
                self.on_batch(BatchStats(taken, len(batch)), merged)

    def _call(self, columns: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.predictor.predict(columns)
        except Exception as exc:
            raise ModelFailed(exc) from exc

    def _score(self, batch: list[_Item]) -> tuple[list[Any], dict[str, Any] | None]:
        """On the model thread: one call for the whole batch, sliced back per request; on failure, each request
        alone, so only the request whose rows the model refuses gets the error. Also returns the batch's outputs
        (None after a failure) for the prediction-distribution metrics."""
        import numpy as np

        if len(batch) == 1:
            try:
                out = self._call(batch[0].parsed.column_arrays())
                return [out], out
            except ModelFailed as exc:
                return [exc], None
        if all(item.parsed.matrix is not None for item in batch):
            matrix = np.concatenate([item.parsed.matrix for item in batch])
            merged = {n: matrix[:, j] for j, n in enumerate(batch[0].parsed.names)}
        else:
            parts = [item.parsed.column_arrays() for item in batch]
            merged = {n: np.concatenate([p[n] for p in parts]) for n in parts[0]}
        try:
            out = self._call(merged)
        except ModelFailed:
            results: list[Any] = []
            for item in batch:
                try:
                    results.append(self._call(item.parsed.column_arrays()))
                except ModelFailed as exc:
                    results.append(exc)
            return results, None
        results = []
        start = 0
        for item in batch:
            end = start + item.rows
            results.append({k: v[start:end] for k, v in out.items()})
            start = end
        return results, out

    async def close(self) -> None:
        """Score everything queued, then stop (SIGTERM drain)."""
        self._closed = True
        if self._more is not None:
            self._more.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def idle(self) -> bool:
        return not self._queue and not self._busy
