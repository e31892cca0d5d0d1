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
from mlops_desktop.serving import segfmt
from mlops_desktop.serving.config import LogConfig
from mlops_desktop.serving.segfmt import SEGMENT_RE, TS_TYPE, Batch, Column

log = logging.getLogger(__name__)

META = ("request_id", "ts", "latency_ms", "model", "version", "arm", "row", "shadow")
RESERVED = frozenset((*META, "prediction"))
# The writer wakes when this many rows wait (or every `flush_interval_s`): each wake writes one Parquet row
# group, and row groups of ~10k rows cost half as much CPU per row as ~2k (zstd and page overheads per group).
WAKE_ROWS = 32768
# ... but it converts them in pieces of this many requests: each numpy/zip call over the records holds the GIL
# (~5 ms per call at 32k requests, a p99 of 24-31 ms against 19-23 ms), and the event loop gets it back between
# pieces. The pieces' tables are joined and written as the one row group.
PIECE_REQUESTS = 4096


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


# One queued request: (request_id, ts, latency_s, inputs, prediction, probabilities, rows, arm, shadow), where
# inputs is the request's float matrix or its dict of column arrays and probabilities may be None. A plain tuple
# of strings, numbers and arrays on purpose: the collector stops tracking such a tuple the first time it survives
# a collection, so thousands of queued requests add nothing to the garbage collector's work on the request path
# (with a dataclass and the request's parsed object per request, every collection there walked them all).
_Record = tuple[str, float, float, Any, Any, Any, int, "str | None", bool]


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
        self._writer: Any = None  # the open segment's writer (segfmt.py)
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
                self._queue.append((request_id, ts, latency_s,
                                    parsed.matrix if parsed.matrix is not None else parsed.column_arrays(),
                                    outputs["prediction"], outputs.get("probabilities"), rows, arm, shadow))
                self._queued_rows += rows
                wake = self._queued_rows >= WAKE_ROWS
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
                if self._queued_rows <= 65536:  # all of it: one swap instead of a pop per request
                    records: Any = self._queue
                    rows = self._queued_rows
                    self._queue = deque()
                else:
                    records, rows = [], 0
                    while self._queue and rows < 65536:
                        rec = self._queue.popleft()
                        records.append(rec)
                        rows += rec[6]  # its rows
                self._queued_rows -= rows
            try:
                records = list(records)
                self._write([self._batch(records[i:i + PIECE_REQUESTS])
                             for i in range(0, len(records), PIECE_REQUESTS)])
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

    def _batch(self, records: Any) -> Batch:
        import numpy as np

        ids, ts, latency, inputs, predictions, probabilities, rows, arms, shadows = zip(*records, strict=True)
        count = len(ids)
        n = sum(rows)
        single = n == count  # one row per request, the common case: no repeats needed
        counts = np.asarray(rows)

        def per_row(values: Any, dtype: str) -> Column:
            if single:
                return Column(dtype, list(values))
            return Column(dtype, np.repeat(np.asarray(values, dtype=object), counts))

        def per_row_numbers(values: Any) -> Column:  # numeric columns without a Python object per row
            array = np.asarray(values, dtype=np.float64)
            return Column("double", array if single else np.repeat(array, counts))

        def flag_or_null(values: Any, dtype: str, absent: Any) -> Column:  # mostly absent: no per-row objects
            if values.count(absent) == count:
                return Column(dtype) if absent is None else Column(dtype, const=absent)
            return per_row(values, dtype)

        ts_us = np.asarray(ts, dtype=np.float64) * 1e6
        if single:
            row_index = np.zeros(n, dtype="int32")
        else:
            starts = np.repeat(np.cumsum(counts) - counts, counts)
            row_index = (np.arange(n) - starts).astype("int32")
        cols: dict[str, Column] = {
            "request_id": per_row(ids, "string"),
            "ts": Column(TS_TYPE, (ts_us if single else np.repeat(ts_us, counts)).astype(np.int64)),
            "latency_ms": per_row_numbers(np.asarray(latency, dtype=np.float64) * 1e3),
            "model": Column("string", const=self.model),
            "version": Column("string", const=self.version),
            "arm": flag_or_null(arms, "string", None),
            "row": Column("int32", row_index),
            "shadow": flag_or_null(shadows, "bool", False),
        }
        if dict not in map(type, inputs):  # every request a float matrix: one concatenation
            matrix = np.concatenate(inputs)
            for j, spec in enumerate(self.signature.inputs):
                cols[stored_name(spec.name)] = Column("auto", matrix[:, j])
        else:
            parts = [x if isinstance(x, dict) else {spec.name: x[:, j] for j, spec in enumerate(self.signature.inputs)}
                     for x in inputs]
            for spec in self.signature.inputs:
                values = np.concatenate([p[spec.name] for p in parts])
                cols[stored_name(spec.name)] = Column("auto", values, spec=spec.dtype)
        cols["prediction"] = Column("auto", np.concatenate(predictions))
        if probabilities[0] is not None:
            proba = np.concatenate(probabilities)
            labels = self.classes or tuple(range(proba.shape[1]))
            for j, label in enumerate(labels[:proba.shape[1]]):
                cols[class_column(label)] = Column("double", np.ascontiguousarray(proba[:, j], dtype=np.float64))
        return Batch(n, cols)

    def _write(self, batches: list[Batch]) -> None:
        """Append batches to the open segment (opened first when none is): Parquet with pyarrow (one row group),
        else column lines (segfmt.py). Every Parquet segment of this process gets the first batch's schema."""
        if self._writer is None:
            self._seq += 1
            suffix = segfmt.segment_suffix()
            path = self.directory / f"{self._seq:010d}{suffix}.partial"
            self._writer = (segfmt.ParquetSegmentWriter(path, self._arrow) if suffix == segfmt.PARQUET
                            else segfmt.ColumnLinesWriter(path))
            self._open_path, self._open_rows, self._opened_at = path, 0, time.monotonic()
        self._writer.write(batches)
        self._open_rows += sum(b.rows for b in batches)

    def _arrow(self, batch: Batch) -> Any:
        table = segfmt.batch_to_arrow(batch)
        if self._schema is None:
            self._schema = table.schema
        elif table.schema != self._schema:
            table = table.cast(self._schema)  # e.g. an all-null column in this batch
        return table

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
            closed = path.with_suffix("")  # NNNN.parquet.partial -> NNNN.parquet (or .jsonl.gz)
            os.replace(path, closed)
            segfmt.remember_rows(closed, self._open_rows)
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
    """Closed segments of a log folder with a sequence number above `after`, oldest first (either format)."""
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
            rows = segfmt.segment_rows(p)
            size = p.stat().st_size
        except (OSError, ValueError, EOFError):
            continue  # removed by retention meanwhile, or not a segment
        out.append(Segment(int(m.group(1)), p, rows, size))
    return out
