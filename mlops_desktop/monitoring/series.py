"""Monitored series in SQLite: packed chunks of (time, value) per series, tail chunks merged, bounded live rings.

A series is (deployment, name, labels). Points go in through `append` in batches (the collector flushes every few
seconds, one transaction per flush); a small tail chunk is rewritten with the new points so live collection does not
leave thousands of tiny chunks. `read` returns numpy arrays for a time range; `latest` the last value of each series
(kept on the series row, so rule evaluation never decodes chunks). NaN values are "no data" points.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlops_desktop.store.db import Database
from mlops_desktop.tracking.packing import decode_float64, decode_int64, encode_float64, encode_int64

TAIL_MERGE_POINTS = 2048
CHUNK_MAX_POINTS = 16_384


def label_key(labels: Mapping[str, str] | None) -> str:
    """Canonical JSON of a label set (sorted keys), the series' identity."""
    return json.dumps(dict(sorted((labels or {}).items())), separators=(",", ":"))


@dataclass(frozen=True)
class Point:
    name: str
    labels: str  # label_key(...)
    ts: float
    value: float


@dataclass
class SeriesInfo:
    id: int
    deployment: str
    name: str
    labels: dict[str, str]
    last_ts: float | None
    last_value: float | None

    def to_dict(self) -> dict[str, Any]:
        value = self.last_value
        return {"name": self.name, "labels": self.labels, "last_ts": self.last_ts,
                "last_value": None if value is None or math.isnan(value) else value}


class SeriesStore:
    """The series tables of one workspace database (thread-safe: each thread uses its own connection)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._ids: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()

    def _id(self, conn: sqlite3.Connection, deployment: str, name: str, labels: str) -> int:
        key = (deployment, name, labels)
        with self._lock:
            found = self._ids.get(key)
        if found is not None:
            return found
        row = conn.execute("SELECT id FROM monitor_series WHERE deployment = ? AND name = ? AND labels = ?",
                           key).fetchone()
        if row is None:
            cur = conn.execute("INSERT INTO monitor_series(deployment, name, labels) VALUES (?, ?, ?)", key)
            sid = int(cur.lastrowid or 0)
        else:
            sid = int(row[0])
        return sid

    def append(self, deployment: str, points: Iterable[Point]) -> int:
        """Write points (any order, any series) in one transaction; returns how many were written."""
        grouped: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for p in points:
            grouped.setdefault((p.name, p.labels), []).append((p.ts, p.value))
        if not grouped:
            return 0
        new_ids: dict[tuple[str, str, str], int] = {}

        def write(conn: sqlite3.Connection) -> int:
            total = 0
            for (name, labels), pts in grouped.items():
                sid = self._id(conn, deployment, name, labels)
                new_ids[(deployment, name, labels)] = sid
                pts.sort()
                ts = np.array([round(t * 1000) for t, _ in pts], dtype=np.int64)
                vals = np.array([v for _, v in pts], dtype=np.float64)
                tail = conn.execute("SELECT id, n, ts, vals FROM monitor_chunks WHERE series_id = ? "
                                    "ORDER BY end_ts DESC, id DESC LIMIT 1", (sid,)).fetchone()
                if tail is not None and tail[1] < TAIL_MERGE_POINTS and tail[1] + len(ts) <= CHUNK_MAX_POINTS:
                    old_ts = decode_int64(tail[2], tail[1])
                    if len(old_ts) == 0 or old_ts[-1] <= ts[0]:
                        ts = np.concatenate((old_ts, ts))
                        vals = np.concatenate((decode_float64(tail[3]), vals))
                        conn.execute("DELETE FROM monitor_chunks WHERE id = ?", (tail[0],))
                for lo in range(0, len(ts), CHUNK_MAX_POINTS):
                    t, v = ts[lo:lo + CHUNK_MAX_POINTS], vals[lo:lo + CHUNK_MAX_POINTS]
                    conn.execute("INSERT INTO monitor_chunks(series_id, start_ts, end_ts, n, ts, vals) "
                                 "VALUES (?, ?, ?, ?, ?, ?)",
                                 (sid, t[0] / 1000, t[-1] / 1000, len(t), encode_int64(t), encode_float64(v)))
                last_t, last_v = pts[-1]
                conn.execute("UPDATE monitor_series SET last_ts = ?, last_value = ? WHERE id = ? AND "
                             "(last_ts IS NULL OR last_ts <= ?)", (last_t, last_v, sid, last_t))
                total += len(pts)
            return total

        written = self.db.write(write)
        with self._lock:
            self._ids.update(new_ids)
        return written

    def list_series(self, deployment: str, name: str | None = None) -> list[SeriesInfo]:
        sql = "SELECT id, deployment, name, labels, last_ts, last_value FROM monitor_series WHERE deployment = ?"
        params: tuple[Any, ...] = (deployment,)
        if name is not None:
            sql += " AND name = ?"
            params += (name,)
        return [SeriesInfo(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5])
                for r in self.db.query(sql + " ORDER BY name, labels", params)]

    def deployments(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT DISTINCT deployment FROM monitor_series ORDER BY deployment")]

    def read(self, deployment: str, name: str, labels: Mapping[str, str] | None = None, *,
             since: float | None = None, until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, values) of one series in [since, until], sorted by time."""
        rows = self.db.query("SELECT id FROM monitor_series WHERE deployment = ? AND name = ? AND labels = ?",
                             (deployment, name, label_key(labels)))
        if not rows:
            return np.zeros(0), np.zeros(0)
        lo = -math.inf if since is None else since
        hi = math.inf if until is None else until
        chunks = self.db.query("SELECT n, ts, vals FROM monitor_chunks WHERE series_id = ? AND end_ts >= ? AND "
                               "start_ts <= ? ORDER BY start_ts, id", (rows[0][0], lo, hi))
        if not chunks:
            return np.zeros(0), np.zeros(0)
        ts = np.concatenate([decode_int64(c[1], c[0]) for c in chunks]).astype(np.float64) / 1000
        vals = np.concatenate([decode_float64(c[2]) for c in chunks])
        keep = (ts >= lo) & (ts <= hi)
        return ts[keep], vals[keep]

    def prune(self, before: float) -> int:
        """Drop whole chunks that end before `before` (retention)."""
        return int(self.db.write(lambda c: c.execute("DELETE FROM monitor_chunks WHERE end_ts < ?",
                                                     (before,)).rowcount))


class LiveRing:
    """The last `maxlen` points of each series, in memory, for the live dashboard (bounded whatever the uptime)."""

    def __init__(self, maxlen: int = 1800) -> None:
        self.maxlen = maxlen
        self._data: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self.version = 0

    def add(self, points: Iterable[Point]) -> None:
        with self._lock:
            for p in points:
                ring = self._data.get((p.name, p.labels))
                if ring is None:
                    ring = self._data[(p.name, p.labels)] = deque(maxlen=self.maxlen)
                ring.append((p.ts, p.value))
            self.version += 1

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._data)

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            ring = list(self._data.get((name, label_key(labels)), ()))
        if not ring:
            return np.zeros(0), np.zeros(0)
        arr = np.array(ring, dtype=np.float64)
        return arr[:, 0], arr[:, 1]

    def last(self, name: str, labels: Mapping[str, str] | None = None) -> tuple[float, float] | None:
        with self._lock:
            ring = self._data.get((name, label_key(labels)))
            return ring[-1] if ring else None
