"""Append to and read packed metric series (chunks + the per-series summary row), inside a caller's transaction."""

from __future__ import annotations

import math
import sqlite3
from typing import Any

import numpy as np

from mlops_desktop.tracking import packing
from mlops_desktop.tracking.entities import MetricHistory


def append_series(conn: sqlite3.Connection, rid: int, key_id: int, steps: np.ndarray, ts: np.ndarray,
                   vals: np.ndarray) -> int:
    n_new = int(vals.shape[0])
    tail = conn.execute("SELECT id, seq, n, steps, ts, vals FROM metric_chunks WHERE run_id = ? AND key_id = ? "
                        "ORDER BY seq DESC LIMIT 1", (rid, key_id)).fetchone()
    seq = 0
    if tail is not None:
        tail_id, tail_seq, tail_n = tail[0], tail[1], tail[2]
        if tail_n < packing.TAIL_MERGE_POINTS:
            steps = np.concatenate((packing.decode_int64(tail[3], tail_n), steps))
            ts = np.concatenate((packing.decode_int64(tail[4], tail_n), ts))
            vals = np.concatenate((packing.decode_float64(tail[5]), vals))
            conn.execute("DELETE FROM metric_chunks WHERE id = ?", (tail_id,))
            seq = tail_seq
        else:
            seq = tail_seq + 1
    rows = []
    for start in range(0, vals.shape[0], packing.CHUNK_MAX_POINTS):
        s = steps[start:start + packing.CHUNK_MAX_POINTS]
        t = ts[start:start + packing.CHUNK_MAX_POINTS]
        v = vals[start:start + packing.CHUNK_MAX_POINTS]
        finite = v[~np.isnan(v)]
        vmin = float(finite.min()) if finite.size else None
        vmax = float(finite.max()) if finite.size else None
        rows.append((rid, key_id, seq, int(v.shape[0]), int(s[0]), int(s[-1]), int(t[0]), int(t[-1]), vmin, vmax,
                     packing.encode_int64(s), packing.encode_int64(t), packing.encode_float64(v)))
        seq += 1
    conn.executemany("INSERT INTO metric_chunks(run_id, key_id, seq, n, step_first, step_last, ts_first, ts_last,"
                     " vmin, vmax, steps, ts, vals) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    update_summary(conn, rid, key_id, steps[-n_new:], ts[-n_new:], vals[-n_new:])
    return n_new

def update_summary(conn: sqlite3.Connection, rid: int, key_id: int, steps: np.ndarray, ts: np.ndarray,
                    vals: np.ndarray) -> None:
    # "last" follows MLflow: the value at the highest step, ties broken by the latest timestamp
    order = np.lexsort((ts, steps))
    last_i = int(order[-1])
    finite = vals[~np.isnan(vals)]
    new_min = float(finite.min()) if finite.size else None
    new_max = float(finite.max()) if finite.size else None
    old = conn.execute("SELECT count, last_value, last_step, last_ts, min_value, max_value FROM metric_series "
                       "WHERE run_id = ? AND key_id = ?", (rid, key_id)).fetchone()
    last = (_opt_float(vals[last_i]), int(steps[last_i]), int(ts[last_i]))
    count = int(vals.shape[0])
    if old is not None:
        count += old[0]
        if (old[2], old[3]) > (last[1], last[2]):
            last = (old[1], old[2], old[3])
        new_min = _combine(min, old[4], new_min)
        new_max = _combine(max, old[5], new_max)
    conn.execute("INSERT OR REPLACE INTO metric_series(run_id, key_id, count, last_value, last_step, last_ts, "
                 "min_value, max_value) VALUES (?,?,?,?,?,?,?,?)",
                 (rid, key_id, count, last[0], last[1], last[2], new_min, new_max))


def read_series(conn: sqlite3.Connection, rid: int, key_id: int, key: str) -> MetricHistory | None:
    rows = conn.execute("SELECT n, steps, ts, vals FROM metric_chunks WHERE run_id = ? AND key_id = ? "
                        "ORDER BY seq", (rid, key_id)).fetchall()
    if not rows:
        return None
    if len(rows) == 1:
        n, s, t, v = rows[0]
        return MetricHistory(key, packing.decode_int64(s, n), packing.decode_int64(t, n), packing.decode_float64(v))
    return MetricHistory(key,
                         np.concatenate([packing.decode_int64(s, n) for n, s, _, _ in rows]),
                         np.concatenate([packing.decode_int64(t, n) for n, _, t, _ in rows]),
                         np.concatenate([packing.decode_float64(v) for _, _, _, v in rows]))


def read_series_tail(conn: sqlite3.Connection, rid: int, key_id: int, key: str, start: int) -> MetricHistory:
    """The points logged after the first ``start`` ones (logging order), decoding only the chunks that hold them.

    Chunks keep logging order (a merged tail chunk only grows at its end), so point indices are stable: a live
    view that already holds ``start`` points asks for the rest instead of the whole series.
    """
    metas = conn.execute("SELECT id, n FROM metric_chunks WHERE run_id = ? AND key_id = ? ORDER BY seq",
                         (rid, key_id)).fetchall()
    ids: list[int] = []
    skip = seen = 0
    for chunk_id, n in metas:
        if seen + n > start:
            if not ids:
                skip = max(0, start - seen)
            ids.append(chunk_id)
        seen += n
    empty = np.zeros(0, dtype=np.int64)
    if not ids:
        return MetricHistory(key, empty, empty.copy(), np.zeros(0, dtype=np.float64))
    marks = ",".join("?" * len(ids))
    rows = conn.execute(f"SELECT n, steps, ts, vals FROM metric_chunks WHERE id IN ({marks}) ORDER BY seq",
                        ids).fetchall()
    steps = np.concatenate([packing.decode_int64(s, n) for n, s, _, _ in rows])[skip:]
    ts = np.concatenate([packing.decode_int64(t, n) for n, _, t, _ in rows])[skip:]
    vals = np.concatenate([packing.decode_float64(v) for _, _, _, v in rows])[skip:]
    return MetricHistory(key, steps, ts, vals)


def _opt_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _combine(op: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return op(a, b)
