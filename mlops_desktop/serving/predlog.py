"""The prediction log: every scored request's inputs, outputs, latency, version and request id, never blocking one.

The request path only appends a reference to its arrays to a bounded queue (`offer`, O(1), no I/O, no lock held
for long). A writer thread turns queued requests into Arrow batches and appends them to the open segment, a Parquet
file written as `NNNNNNNNNN.parquet.partial` and renamed to `NNNNNNNNNN.parquet` when it is closed (by rows, by age,
or at shutdown); a closed segment never changes. When the queue is full (the disk is slower than the traffic) the
request's rows are dropped and counted, and the request is answered as usual. `close()` writes everything accepted.

Rows: one per scored input row. Columns: `request_id`, `ts` (UTC, when the request arrived), `latency_ms`, `model`,
`version`, `arm` (set by the A/B router, else null), `row` (the row's index in its request), `shadow` (true for a
copy the router mirrored to a shadow arm: its answer went nowhere; the primary's rows have the same request id),
the signature's input columns (an input named like one of these is stored as `input_<name>`), `prediction`, and for
classifiers one `proba_<class>` column per class. Segments written before `shadow` existed lack that column (read
them as shadow = false); the lake committer never mixes the two kinds of segment in one commit.

Segments are the unit every sink consumes: the lake committer (`lakesink.py`) appends them to a dataset, and a
collector without access to this disk pulls them over HTTP (`segments_after`, `/predictions/segments`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_desktop.registry.signature import Signature
from mlops_desktop.serving.config import LogConfig

log = logging.getLogger(__name__)

META = ("request_id", "ts", "latency_ms", "model", "version", "arm", "row", "shadow")
RESERVED = frozenset((*META, "prediction"))
SEGMENT_RE = re.compile(r"^(\d{10})\.parquet$")


def stored_name(column: str) -> str:
    return f"input_{column}" if column in RESERVED or column.startswith("proba_") else column


def class_column(label: Any) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]", "_", str(label))
    return f"proba_{slug}"


@dataclass(frozen=True)
class Segment:
    seq: int
    path: Path
    rows: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "name": self.path.name, "rows": self.rows, "bytes": self.bytes}


@dataclass
class _Record:
    request_id: str
    ts: float
    latency_s: float
    parsed: Any
    outputs: dict[str, Any]
    rows: int
    arm: str | None
    shadow: bool = False


class PredictionLog:
    """One model version's log: a bounded queue, a writer thread, and a folder of segments."""

    def __init__(self, config: LogConfig, signature: Signature, model: str, version: str, *,
                 counters: Any = None, classes: tuple[Any, ...] = ()) -> None:
        if config.directory is None:
            raise ValueError("a prediction log needs a directory")
        self.config = config
        self.signature = signature
        self.model = model
        self.version = version
        self.directory = Path(config.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.counters = counters  # callable(outcome, rows) -> None, e.g. the Prometheus counter
        self.classes = classes or signature.classes
        self._queue: deque[_Record] = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._flush_waiters: list[threading.Event] = []
        self._random = random.Random()  # noqa: S311 - sampling, not security
        self._seq = self._last_seq()
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter of the open segment
        self._open_path: Path | None = None
        self._open_rows = 0
        self._opened_at = 0.0
        self._schema: Any = None
        self.written_rows = 0
        self.dropped_rows = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ request path
    def offer(self, request_id: str, ts: float, latency_s: float, parsed: Any, outputs: dict[str, Any],
              arm: str | None = None, shadow: bool = False) -> bool:
        """Queue one request's rows (a `payloads.Parsed`: its arrays are kept, not copied); False when sampled out
        or dropped (the queue is full). Never blocks on I/O."""
        rows = parsed.rows
        rate = self.config.sample_rate
        if rate < 1.0 and self._random.random() >= rate:
            self._count("sampled_out", rows)
            return False
        with self._lock:
            if self._stop or self._queued_rows + rows > self.config.max_queue_rows:
                full = True
            else:
                full = False
                self._queue.append(_Record(request_id, ts, latency_s, parsed, outputs, rows, arm, shadow))
                self._queued_rows += rows
                wake = self._queued_rows >= 8192
        if full:
            self.dropped_rows += rows
            self._count("dropped_queue_full", rows)
            return False
        if wake:
            self._wake.set()
        return True

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def _count(self, outcome: str, rows: int) -> None:
        if self.counters is not None and rows:
            self.counters(outcome, rows)

    # ------------------------------------------------------------------ writer thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.config.flush_interval_s)
            self._wake.clear()
            stopping = self._stop
            with self._lock:
                waiters, self._flush_waiters = self._flush_waiters, []
            self._drain()
            if self._open_path is not None and (
                    stopping or waiters or self._open_rows >= self.config.segment_max_rows
                    or time.monotonic() - self._opened_at >= self.config.segment_max_age_s):
                self._close_segment()
            for done in waiters:
                done.set()
            if stopping and not self._queue:
                return

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    return
                records: list[_Record] = []
                rows = 0
                while self._queue and rows < 65536:
                    rec = self._queue.popleft()
                    records.append(rec)
                    rows += rec.rows
                self._queued_rows -= rows
            try:
                table = self._table(records)
                self._write(table)
            except OSError as exc:  # a full or failing disk: count what is lost, keep serving, try again later
                log.warning("prediction log: cannot write %d rows to %s: %s", rows, self.directory, exc.strerror)
                self.dropped_rows += rows
                self._count("dropped_write_error", rows)
                self._abandon_segment()
            except Exception:  # a bug must not stop the writer; the rows are counted as dropped
                log.exception("prediction log: cannot convert %d rows", rows)
                self.dropped_rows += rows
                self._count("dropped_write_error", rows)
            else:
                self.written_rows += rows
                self._count("written", rows)

    def _table(self, records: list[_Record]) -> Any:
        import numpy as np
        import pyarrow as pa

        rows = [r.rows for r in records]
        n = sum(rows)
        single = n == len(records)  # one row per request, the common case: no repeats needed
        counts = np.asarray(rows)

        def per_row(values: list[Any], dtype: Any) -> Any:
            if single:
                return pa.array(values, type=dtype)
            return pa.array(np.repeat(np.asarray(values, dtype=object), counts), type=dtype)

        def per_row_numbers(values: Any) -> Any:  # numeric columns without a Python object per row
            array = np.fromiter(values, dtype=np.float64, count=len(records))
            return pa.array(array if single else np.repeat(array, counts))

        def flag_or_null(values: list[Any], dtype: Any, absent: Any) -> Any:  # mostly absent: no per-row objects
            if not any(v is not absent and v for v in values):
                if absent is None:
                    return pa.nulls(n, type=dtype)
                return pa.array(np.zeros(n, dtype=bool))
            return per_row(values, dtype)

        ts_us = np.fromiter((r.ts for r in records), dtype=np.float64, count=len(records)) * 1e6
        ts = pa.array((ts_us if single else np.repeat(ts_us, counts)).astype(np.int64))
        if single:
            row_index = np.zeros(n, dtype="int32")
        else:
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            row_index = (np.arange(n) - starts).astype("int32")
        cols: dict[str, Any] = {
            "request_id": per_row([r.request_id for r in records], pa.string()),
            "ts": ts.cast(pa.timestamp("us", tz="UTC")),
            "latency_ms": per_row_numbers(r.latency_s * 1e3 for r in records),
            "model": pa.array([self.model], type=pa.string()).take(np.zeros(n, dtype="int32")),
            "version": pa.array([self.version], type=pa.string()).take(np.zeros(n, dtype="int32")),
            "arm": flag_or_null([r.arm for r in records], pa.string(), None),
            "row": pa.array(row_index),
            "shadow": flag_or_null([r.shadow for r in records], pa.bool_(), False),
        }
        if all(r.parsed.matrix is not None for r in records):
            matrix = np.concatenate([r.parsed.matrix for r in records])
            for j, spec in enumerate(self.signature.inputs):
                cols[stored_name(spec.name)] = pa.array(matrix[:, j], from_pandas=True)
        else:
            parts = [r.parsed.column_arrays() for r in records]
            for spec in self.signature.inputs:
                values = np.concatenate([p[spec.name] for p in parts])
                cols[stored_name(spec.name)] = _arrow(values, spec.dtype)
        prediction = np.concatenate([r.outputs["prediction"] for r in records])
        cols["prediction"] = _arrow(prediction, None)
        if "probabilities" in records[0].outputs:
            proba = np.concatenate([r.outputs["probabilities"] for r in records])
            labels = self.classes or tuple(range(proba.shape[1]))
            for j, label in enumerate(labels[:proba.shape[1]]):
                cols[class_column(label)] = pa.array(proba[:, j], type=pa.float64())
        table = pa.table(cols)
        if self._schema is not None and table.schema != self._schema:
            table = table.cast(self._schema)  # e.g. an all-null column in this batch
        return table

    def _write(self, table: Any) -> None:
        import pyarrow.parquet as pq

        if self._writer is None:
            self._seq += 1
            self._open_path = self.directory / f"{self._seq:010d}.parquet.partial"
            if self._schema is None:
                self._schema = table.schema
            self._writer = pq.ParquetWriter(self._open_path, self._schema, compression="zstd", compression_level=1)
            self._open_rows = 0
            self._opened_at = time.monotonic()
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._open_rows += table.num_rows

    def _close_segment(self) -> None:
        if self._writer is None or self._open_path is None:
            return
        path = self._open_path
        try:
            self._writer.close()
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(path, path.with_suffix(""))  # NNNN.parquet.partial -> NNNN.parquet
        except OSError as exc:
            log.warning("prediction log: cannot close segment %s: %s; its %d rows are lost", path.name,
                        exc.strerror, self._open_rows)
            self._count("dropped_write_error", self._open_rows)
            self.dropped_rows += self._open_rows
            self.written_rows -= self._open_rows
            with contextlib.suppress(OSError):
                path.unlink()
        self._writer = None
        self._open_path = None
        self._open_rows = 0
        self._retain()

    def _abandon_segment(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        lost = self._open_rows
        if self._open_path is not None:
            with contextlib.suppress(OSError):
                self._open_path.unlink()
        if lost:
            self._count("dropped_write_error", lost)
            self.dropped_rows += lost
            self.written_rows -= lost
        self._writer = None
        self._open_path = None
        self._open_rows = 0

    def _retain(self) -> None:
        """Keep closed segments within `retain_bytes`, oldest removed first (counted as evicted)."""
        segments = self.segments()
        total = sum(s.bytes for s in segments)
        for seg in segments:
            if total <= self.config.retain_bytes:
                break
            with contextlib.suppress(OSError):
                seg.path.unlink()
                total -= seg.bytes
                self._count("evicted", seg.rows)

    def _last_seq(self) -> int:
        seqs = [0]
        for p in self.directory.iterdir():
            name = p.name.removesuffix(".partial")
            m = SEGMENT_RE.match(name)
            if m:
                seqs.append(int(m.group(1)))
            if p.name.endswith(".partial"):  # a segment a killed server left open: its footer is missing
                with contextlib.suppress(OSError):
                    p.unlink()
        return max(seqs)

    # ------------------------------------------------------------------ readers
    def segments(self, after: int = 0) -> list[Segment]:
        return list_segments(self.directory, after)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write what is queued now and close the open segment (a test or an operator wants it on disk)."""
        done = threading.Event()
        with self._lock:
            self._flush_waiters.append(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float = 60.0) -> None:
        """Stop accepting, write everything accepted, close the segment (SIGTERM path)."""
        with self._lock:
            self._stop = True
        self._wake.set()
        self._thread.join(timeout)


def list_segments(directory: Path, after: int = 0) -> list[Segment]:
    """Closed segments of a log folder with a sequence number above `after`, oldest first."""
    import pyarrow.parquet as pq

    out = []
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []
    for p in entries:
        m = SEGMENT_RE.match(p.name)
        if not m or int(m.group(1)) <= after:
            continue
        try:
            rows = pq.read_metadata(p).num_rows
            size = p.stat().st_size
        except (OSError, ValueError):
            continue  # removed by retention meanwhile, or not a Parquet file
        out.append(Segment(int(m.group(1)), p, rows, size))
    return out


def _arrow(values: Any, dtype: str | None) -> Any:
    import pyarrow as pa

    if values.dtype == object:
        return pa.array(values.tolist(), from_pandas=True)
    if dtype is not None and dtype.startswith(("int", "uint")) and values.dtype.kind == "f":
        return pa.array(values, from_pandas=True).cast(pa.int64(), safe=False)  # nulls arrived as NaN
    return pa.array(values, from_pandas=True)
