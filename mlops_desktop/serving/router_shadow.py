"""Shadow traffic: a share of the requests is mirrored to a candidate arm after the primary answered; the shadow's
answer is compared with the primary's, counted and logged, and never returned.

The request path only appends a tuple to a bounded queue (no I/O, no parsing); a few worker tasks send the copies,
so a slow or hanging shadow fills the queue and further copies are dropped and counted, while primary answers are
never held up. Each mirrored request reaches the shadow's server with the primary's request id and the headers
`x-mlops-arm: <shadow arm>` and `x-mlops-shadow: 1`, so the shadow's own prediction log has its answer and latency
(rows with `shadow = true`), joinable with the primary's rows on `request_id`. The router's comparison log (Parquet
segments in `<state_dir>/shadow/`, the prediction log's segment format) has one row per mirrored request:
`request_id, ts, primary_arm, shadow_arm, primary_status, shadow_status, primary_latency_ms, shadow_latency_ms,
rows, agreed_rows, agree, error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.serving.predlog import PredictionLog
from mlops_desktop.serving.router_upstream import Exchange
from mlops_desktop.serving.segfmt import TS_TYPE, Batch, Column

if TYPE_CHECKING:
    from mlops_desktop.serving.router import Router
    from mlops_desktop.serving.router_config import ShadowConfig

log = logging.getLogger("mlops_desktop.serving.router")


@dataclass
class Comparison:
    request_id: str
    ts: float
    primary_arm: str
    shadow_arm: str
    primary_status: int
    shadow_status: int            # 0 when the shadow did not answer
    primary_latency_ms: float
    shadow_latency_ms: float | None
    rows: int
    agreed_rows: int
    agree: bool | None            # None when there was nothing to compare (an error on either side)
    error: str | None


def predictions_of(body: bytes) -> list[Any] | None:
    """The per-row predictions of an answer: MLflow's {"predictions": [...]} or the v2 output named prediction."""
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    if "predictions" in doc:
        value = doc["predictions"]
        return value if isinstance(value, list) else [value]
    outputs = doc.get("outputs")
    if isinstance(outputs, list):
        for out in outputs:
            if isinstance(out, dict) and out.get("name") == "prediction" and isinstance(out.get("data"), list):
                return list(out["data"])
    return None


def agreement(primary: list[Any], shadow: list[Any], tolerance: float) -> tuple[int, int]:
    """(rows, rows whose predictions agree): equal labels, or numbers within `tolerance` (relative, and absolute
    near 0); answers of different lengths agree on none of the extra rows."""

    def same(a: Any, b: Any) -> bool:
        if a == b:
            return True
        if tolerance > 0 and isinstance(a, int | float) and isinstance(b, int | float) \
                and not isinstance(a, bool) and not isinstance(b, bool):
            return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
        return False

    rows = max(len(primary), len(shadow))
    return rows, sum(1 for a, b in zip(primary, shadow, strict=False) if same(a, b))


class ComparisonLog(PredictionLog):
    """The shadow comparison rows, written by the prediction log's segment writer (same files, same retention,
    same `/segments` readers); only the record and its table differ."""

    def __init__(self, directory: Path) -> None:
        from mlops_desktop.registry.signature import ColumnSpec, Signature
        from mlops_desktop.serving.config import LogConfig

        config = LogConfig(directory=directory, max_queue_rows=100_000, flush_interval_s=1.0,
                           segment_max_rows=100_000, segment_max_age_s=60.0, retain_bytes=512 << 20)
        # the base class keeps a signature for its own table; this log writes its own columns
        super().__init__(config, Signature((ColumnSpec("request_id", "string"),)), "router", "-")

    def offer_comparison(self, record: Comparison) -> bool:
        with self._lock:
            if self._stop or self._queued_rows + 1 > self.config.max_queue_rows:
                self.dropped_rows += 1
                return False
            self._queue.append(_Row(record))  # type: ignore[arg-type]
            self._queued_rows += 1
        return True

    def _batch(self, records: list[Any]) -> Batch:
        import numpy as np

        rows = [r.record for r in records]
        return Batch(len(rows), {
            "request_id": Column("string", [r.request_id for r in rows]),
            "ts": Column(TS_TYPE, np.fromiter((int(r.ts * 1e6) for r in rows), dtype=np.int64, count=len(rows))),
            "primary_arm": Column("string", [r.primary_arm for r in rows]),
            "shadow_arm": Column("string", [r.shadow_arm for r in rows]),
            "primary_status": Column("int16", [r.primary_status for r in rows]),
            "shadow_status": Column("int16", [r.shadow_status for r in rows]),
            "primary_latency_ms": Column("double", [r.primary_latency_ms for r in rows]),
            "shadow_latency_ms": Column("double", [r.shadow_latency_ms for r in rows]),
            "rows": Column("int32", [r.rows for r in rows]),
            "agreed_rows": Column("int32", [r.agreed_rows for r in rows]),
            "agree": Column("bool", [r.agree for r in rows]),
            "error": Column("string", [r.error for r in rows]),
        })


class _Row:
    __slots__ = ("record", "rows")

    def __init__(self, record: Comparison) -> None:
        self.record = record
        self.rows = 1


# a queued mirror job: (method, url, headers, body, request id, primary arm, primary status, primary latency s,
# primary answer, arrival time)
Job = tuple[bytes, bytes, list[bytes], bytes, str, str, int, float, bytes, float]


class _Copy(Exchange):
    """A mirrored request: its outcome lands in a future the shadow worker awaits."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[tuple[int, bytes | None, str | None]]) -> None:
        super().__init__()
        self.future = future

    def on_reply(self, status: int, raw: bytes, body: bytes) -> None:
        if not self.future.done():
            self.future.set_result((status, body, None))

    def on_fail(self, kind: str) -> None:
        if not self.future.done():
            self.future.set_result((0, None, kind))


class ShadowMirror:
    def __init__(self, router: Router, config: ShadowConfig) -> None:
        self.router = router
        self.config = config
        self.arm = config.arm
        self.queue: deque[Job] = deque()
        self._wake: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._closing = False
        m = router.metrics
        self._dropped = m.child(m.dropped, self.arm)
        self._mirrored = m.child(m.mirrored, self.arm)
        self._disagreed = m.child(m.disagreed, self.arm)
        self._latency = m.child(m.shadow_latency, self.arm)
        self.stats = {"mirrored": 0, "dropped": 0, "failed": 0, "disagreed": 0, "agreed": 0}
        state = router.config.state_dir
        self.log: ComparisonLog | None = ComparisonLog(state / "shadow") if state is not None else None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._workers = [loop.create_task(self._work(), name=f"shadow-{i}") for i in range(self.config.concurrency)]

    def offer(self, job: Job) -> None:
        """On the request path: queue a copy, or drop and count it when the queue is full."""
        if self._closing or len(self.queue) >= self.config.queue:
            self.stats["dropped"] += 1
            self._dropped.inc()
            return
        self.queue.append(job)
        if self._wake is not None:
            self._wake.set()

    async def _work(self) -> None:
        assert self._wake is not None
        while True:
            if not self.queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            job = self.queue.popleft()
            try:
                await self._mirror(job)
            except Exception:  # a bug must not stop the worker: the copy is counted as failed
                log.exception("router: mirroring a request to the shadow failed")
                self._fail("internal")

    def _fail(self, kind: str) -> None:
        self.stats["failed"] += 1
        self.router.metrics.child(self.router.metrics.shadow_failed, self.arm, kind).inc()

    async def _mirror(self, job: Job) -> None:
        method, url, headers, body, rid, primary_arm, p_status, p_latency, p_body, arrived = job
        r = self.router
        backend = r.pick_backend(self.arm)
        data = r.request_bytes(method, url, headers, body, rid, self.arm, backend, shadow=True)
        ex = _Copy(asyncio.get_running_loop().create_future())
        backend.send(data, ex, self.config.timeout_s)
        status, answer, error = await ex.future
        latency = time.perf_counter() - ex.sent_at
        rows = agreed = 0
        agree: bool | None = None
        if error is not None:
            self._fail(error)
        else:
            self._mirrored.inc()
            self.stats["mirrored"] += 1
            self._latency.observe(latency)
            if status == 200 and p_status == 200:
                a, b = predictions_of(p_body), predictions_of(answer or b"")
                if a is not None and b is not None:
                    rows, agreed = agreement(a, b, self.config.tolerance)
                    agree = rows == agreed
                    if agree:
                        self.stats["agreed"] += 1
                    else:
                        self.stats["disagreed"] += 1
                        self._disagreed.inc()
            elif status != p_status:
                error = f"status {status} (primary {p_status})"
        if self.log is not None:
            self.log.offer_comparison(Comparison(rid, arrived, primary_arm, self.arm, p_status, status,
                                                 p_latency * 1e3, latency * 1e3 if error is None else None, rows,
                                                 agreed, agree, error))

    async def close(self, timeout: float = 5.0) -> None:
        """Finish the copies in flight (each bounded by the shadow timeout), drop and count the queued ones."""
        self._closing = True
        left = len(self.queue)
        self.queue.clear()
        if left:
            self.stats["dropped"] += left
            self._dropped.inc(left)
        if self._wake is not None:
            self._wake.set()
        if self._workers:
            _, pending = await asyncio.wait(self._workers, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.log is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.log.close)

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "queued": len(self.queue), **self.stats,
                "log": str(self.log.directory) if self.log is not None else None}
