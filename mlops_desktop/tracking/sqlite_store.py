"""SQLite implementation of the tracking store: packed metric chunks, indexed summaries, content-hashed artifacts."""

from __future__ import annotations

import getpass
import math
import os
import socket
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.paths import WorkspacePaths
from mlops_desktop.procs import pid_alive, process_start_ticks
from mlops_desktop.store.db import Database
from mlops_desktop.tracking import blobs
from mlops_desktop.tracking.downsample import minmax_indices
from mlops_desktop.tracking.entities import (
    Artifact,
    DatasetInput,
    Experiment,
    MetricHistory,
    MetricSummary,
    Run,
    RunPage,
    RunStatus,
)
from mlops_desktop.tracking.query import ATTRIBUTES, METRIC_AGGREGATES, compile_filter, parse_order_by
from mlops_desktop.tracking.series import append_series, read_series, read_series_tail
from mlops_desktop.tracking.store import MetricArrays, TrackingStore

RUN_COLUMNS = ("r.id, r.uuid, r.experiment_id, r.name, r.status, r.host, r.user, r.command, r.git_commit, "
               "r.git_dirty, r.start_time, r.end_time, (SELECT p.uuid FROM runs p WHERE p.id = r.parent_id), "
               "r.notes, r.pid, r.deleted_at")
MAX_PARAM_LENGTH = 8000
DEFAULT_EXPERIMENT = "Default"


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def _param_num(text: str) -> float | None:
    try:
        num = float(text)
    except ValueError:
        return None
    return num if math.isfinite(num) else None



class SqliteTrackingStore(TrackingStore):
    def __init__(self, db: Database, paths: WorkspacePaths) -> None:
        self.db = db
        self.paths = paths
        self._run_ids: dict[str, int] = {}
        self._key_ids: dict[str, int] = {}
        self._own_writes = 0
        db.rollback_listeners.append(self._forget_cached_ids)

    def _forget_cached_ids(self) -> None:
        """A rolled-back transaction may have created the runs or metric keys these caches name."""
        self._run_ids.clear()
        self._key_ids.clear()

    # ---------------------------------------------------------------------------------------------- experiments
    def create_experiment(self, name: str, description: str = "") -> Experiment:
        name = name.strip()
        if not name:
            raise UsageError("an experiment needs a name")

        def tx(conn: sqlite3.Connection) -> Experiment:
            row = conn.execute("SELECT id, name, description, created_at FROM experiments WHERE name = ?",
                               (name,)).fetchone()
            if row:
                return Experiment(*row)
            now = time.time()
            # "Default" gets id 0 where it is free: MLflow's default experiment id, which mlflow itself asks for
            zero_free = name == DEFAULT_EXPERIMENT and conn.execute(
                "SELECT 1 FROM experiments WHERE id = 0").fetchone() is None
            cur = conn.execute("INSERT INTO experiments(id, name, description, created_at) VALUES (?, ?, ?, ?)",
                               (0 if zero_free else None, name, description, now))
            return Experiment(0 if zero_free else int(cur.lastrowid or 0), name, description, now)

        return self._write(tx)

    def get_experiment(self, experiment_id: int) -> Experiment:
        rows = self.db.query("SELECT id, name, description, created_at FROM experiments WHERE id = ?",
                             (experiment_id,))
        if not rows:
            raise NotFoundError(f"no experiment with id {experiment_id}")
        return Experiment(*rows[0])

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        rows = self.db.query("SELECT id, name, description, created_at FROM experiments WHERE name = ?", (name,))
        return Experiment(*rows[0]) if rows else None

    def resolve_experiment(self, ref: str) -> Experiment:
        """An experiment by name, or by numeric id."""
        exp = self.get_experiment_by_name(ref)
        if exp is None and ref.isdigit():
            return self.get_experiment(int(ref))
        if exp is None:
            raise NotFoundError(f"no experiment named {ref!r}")
        return exp

    def list_experiments(self) -> list[Experiment]:
        rows = self.db.query("SELECT id, name, description, created_at FROM experiments WHERE deleted_at IS NULL "
                             "ORDER BY name")
        return [Experiment(*r) for r in rows]

    def experiment_run_counts(self) -> dict[int, int]:
        rows = self.db.query("SELECT experiment_id, count(*) FROM runs WHERE deleted_at IS NULL GROUP BY 1")
        return {int(e): int(c) for e, c in rows}

    # ---------------------------------------------------------------------------------------------- runs
    def create_run(self, experiment_id: int, *, name: str = "", command: str = "", host: str = "", user: str = "",
                   git_commit: str | None = None, git_dirty: bool | None = None, parent_uuid: str | None = None,
                   tags: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
                   pid: int | None = None, run_uuid: str | None = None, start_time: float | None = None,
                   status: str = "running", notes: str = "") -> Run:
        run_uuid = run_uuid or uuidlib.uuid4().hex
        host = host or socket.gethostname()
        user = user or _current_user()
        start = time.time() if start_time is None else start_time
        status = RunStatus(status).value
        pid_start = process_start_ticks(pid) if pid else None

        def tx(conn: sqlite3.Connection) -> None:
            parent_id = self._run_id(conn, parent_uuid) if parent_uuid else None
            if conn.execute("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,)).fetchone() is None:
                raise NotFoundError(f"no experiment with id {experiment_id}")
            cur = conn.execute(
                "INSERT INTO runs(uuid, experiment_id, name, status, host, user, command, git_commit, git_dirty, pid,"
                " pid_start, start_time, heartbeat, parent_id, notes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_uuid, experiment_id, name, status, host, user, command, git_commit,
                 None if git_dirty is None else int(git_dirty), pid, pid_start, start, start, parent_id, notes or ""))
            self._run_ids[run_uuid] = int(cur.lastrowid or 0)
            if params:
                self._log_params(conn, self._run_ids[run_uuid], params)
            if tags:
                self._set_tags(conn, self._run_ids[run_uuid], tags)

        self._write(tx)
        return self.get_run(run_uuid)

    def ensure_run(self, run_uuid: str, experiment_name: str, **fields: Any) -> Run:
        """The run with this uuid, created if absent (used by spool import and attached jobs)."""
        rows = self.db.query("SELECT 1 FROM runs WHERE uuid = ?", (run_uuid,))
        if rows:
            return self.get_run(run_uuid)
        exp = self.get_or_create_experiment(experiment_name)
        return self.create_run(exp.id, run_uuid=run_uuid, **fields)

    def _run_id(self, conn: sqlite3.Connection, uuid: str) -> int:
        cached = self._run_ids.get(uuid)
        if cached is not None:
            return cached
        row = conn.execute("SELECT id FROM runs WHERE uuid = ?", (uuid,)).fetchone()
        if row is None:
            matches = conn.execute("SELECT id, uuid FROM runs WHERE uuid LIKE ? LIMIT 2",
                                   (uuid.replace("%", "").replace("_", "") + "%",)).fetchall() if len(uuid) >= 4 else []
            if len(matches) == 1:
                return int(matches[0][0])
            raise NotFoundError(f"no run {uuid!r}" + (" (prefix is ambiguous)" if len(matches) > 1 else ""))
        self._run_ids[uuid] = int(row[0])
        return int(row[0])

    def resolve_run_uuid(self, ref: str) -> str:
        """Full uuid for a uuid or a unique prefix of one (as typed on the command line)."""
        conn = self.db.connect()
        run_id = self._run_id(conn, ref)
        return str(conn.execute("SELECT uuid FROM runs WHERE id = ?", (run_id,)).fetchone()[0])

    def get_runs(self, uuids: list[str]) -> list[Run]:
        conn = self.db.connect()
        ids = [self._run_id(conn, u) for u in uuids]
        runs = self._load_runs(conn, ids)
        by_id = {rid: run for rid, run in runs}
        return [by_id[i] for i in ids]

    def _load_runs(self, conn: sqlite3.Connection, ids: list[int]) -> list[tuple[int, Run]]:
        if not ids:
            return []
        out: dict[int, Run] = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            for row in conn.execute(f"SELECT {RUN_COLUMNS} FROM runs r WHERE r.id IN ({marks})", part):
                out[row[0]] = Run(uuid=row[1], experiment_id=row[2], name=row[3], status=row[4], host=row[5],
                                  user=row[6], command=row[7], git_commit=row[8],
                                  git_dirty=None if row[9] is None else bool(row[9]), start_time=row[10],
                                  end_time=row[11], parent_uuid=row[12], notes=row[13], pid=row[14],
                                  deleted_at=row[15])
            for rid, key, value in conn.execute(f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})",
                                                part):
                out[rid].params[key] = value
            for rid, key, value in conn.execute(f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})",
                                                part):
                out[rid].tags[key] = value
            for rid, key, count, last, step, ts, vmin, vmax in conn.execute(
                    "SELECT s.run_id, k.name, s.count, s.last_value, s.last_step, s.last_ts, s.min_value, s.max_value "
                    f"FROM metric_series s JOIN metric_keys k ON k.id = s.key_id WHERE s.run_id IN ({marks})", part):
                out[rid].metrics[key] = MetricSummary(last, vmin, vmax, count, step, ts)
        return [(i, out[i]) for i in ids if i in out]

    def search_runs(self, experiment_ids: list[int] | None = None, filter_string: str | None = None,
                    order_by: list[str] | None = None, limit: int = 100, offset: int = 0,
                    include_deleted: bool = False, *, only_deleted: bool = False,
                    ms_times: bool = False) -> RunPage:
        if limit < 0 or offset < 0:
            raise UsageError("limit and offset must not be negative")
        compiled = compile_filter(filter_string, ms_times)
        where = [compiled.sql]
        params: list[Any] = list(compiled.params)
        if only_deleted:
            where.insert(0, "r.deleted_at IS NOT NULL")
        elif not include_deleted:
            where.insert(0, "r.deleted_at IS NULL")
        if experiment_ids is not None:
            where.insert(0, f"r.experiment_id IN ({','.join('?' * len(experiment_ids))})")
            params = list(experiment_ids) + params
        where_sql = " AND ".join(where)
        joins, order_terms, join_params = self._order_sql(order_by)
        conn = self.db.connect()
        total = conn.execute(f"SELECT count(*) FROM runs r WHERE {where_sql}", params).fetchone()[0]
        sql = (f"SELECT r.id FROM runs r {' '.join(joins)} WHERE {where_sql} "
               f"ORDER BY {', '.join(order_terms)} LIMIT ? OFFSET ?")
        try:
            ids = [row[0] for row in conn.execute(sql, join_params + params + [limit, offset])]
        except sqlite3.Error as exc:
            raise self.db._wrap(exc) from None
        return RunPage([run for _, run in self._load_runs(conn, ids)], int(total), offset)

    def _order_sql(self, order_by: list[str] | None) -> tuple[list[str], list[str], list[Any]]:
        joins: list[str] = []
        terms: list[str] = []
        params: list[Any] = []
        for i, key in enumerate(parse_order_by(order_by)):
            direction = "DESC" if key.descending else "ASC"
            if key.kind == "attr":
                expr = ATTRIBUTES[key.key]
            elif key.kind == "param":
                joins.append(f"LEFT JOIN params o{i} ON o{i}.run_id = r.id AND o{i}.key = ?")
                params.append(key.key)
                terms.append(f"o{i}.value IS NULL")
                terms.append(f"o{i}.value_num {direction}")
                expr = f"o{i}.value"
            elif key.kind == "tag":
                joins.append(f"LEFT JOIN tags o{i} ON o{i}.run_id = r.id AND o{i}.key = ?")
                params.append(key.key)
                expr = f"o{i}.value"
            else:
                joins.append(f"LEFT JOIN metric_series o{i} ON o{i}.run_id = r.id AND o{i}.key_id = "
                             f"(SELECT id FROM metric_keys WHERE name = ?)")
                params.append(key.key)
                expr = f"o{i}.{METRIC_AGGREGATES[key.agg]}"
            if key.kind != "param":
                terms.append(f"{expr} IS NULL")  # missing values sort last either way
            terms.append(f"{expr} {direction}")
        terms.append("r.start_time DESC")
        terms.append("r.id DESC")
        return joins, terms, params

    def set_terminated(self, uuid: str, status: str, end_time: float | None = None) -> None:
        status = RunStatus(status).value
        end = time.time() if end_time is None else end_time

        def tx(conn: sqlite3.Connection) -> None:
            rid = self._run_id(conn, uuid)
            conn.execute("UPDATE runs SET status = ?, end_time = ?, heartbeat = ? WHERE id = ?",
                         (status, None if status == "running" else end, end, rid))

        self._write(tx)

    def heartbeat(self, uuid: str) -> None:
        self._write(lambda conn: conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?",
                                              (time.time(), self._run_id(conn, uuid))))

    def update_run(self, uuid: str, *, name: str | None = None, notes: str | None = None,
                   experiment_id: int | None = None) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            rid = self._run_id(conn, uuid)
            if name is not None:
                conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, rid))
            if notes is not None:
                conn.execute("UPDATE runs SET notes = ? WHERE id = ?", (notes, rid))
            if experiment_id is not None:
                if conn.execute("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,)).fetchone() is None:
                    raise NotFoundError(f"no experiment with id {experiment_id}")
                conn.execute("UPDATE runs SET experiment_id = ? WHERE id = ?", (experiment_id, rid))

        self._write(tx)

    def delete_run(self, uuid: str) -> None:
        """Soft delete: hidden from searches, restorable with restore_run, removed for good by purge_deleted."""
        self._write(lambda conn: conn.execute("UPDATE runs SET deleted_at = ? WHERE id = ?",
                                              (time.time(), self._run_id(conn, uuid))))

    def restore_run(self, uuid: str) -> None:
        self._write(lambda conn: conn.execute("UPDATE runs SET deleted_at = NULL WHERE id = ?",
                                              (self._run_id(conn, uuid),)))

    def purge_deleted(self) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            n = conn.execute("DELETE FROM runs WHERE deleted_at IS NOT NULL").rowcount
            conn.execute("DELETE FROM blobs WHERE digest NOT IN (SELECT digest FROM artifacts) "
                         "AND digest NOT IN (SELECT digest FROM logged_model_artifacts)")
            return int(n)

        count = self._write(tx)
        self._run_ids.clear()
        return count

    # ---------------------------------------------------------------------------------------------- params, tags
    def log_params(self, uuid: str, params: Mapping[str, Any]) -> None:
        self._write(lambda conn: self._log_params(conn, self._run_id(conn, uuid), params))

    def _log_params(self, conn: sqlite3.Connection, rid: int, params: Mapping[str, Any]) -> None:
        rows = []
        for key, value in params.items():
            if not isinstance(key, str) or not key:
                raise UsageError(f"param names must be non-empty strings, got {key!r}")
            text = _param_text(value)
            if len(text) > MAX_PARAM_LENGTH:
                raise UsageError(f"param {key!r} is {len(text)} characters long (limit {MAX_PARAM_LENGTH}); "
                                 "log it as an artifact instead")
            old = conn.execute("SELECT value FROM params WHERE run_id = ? AND key = ?", (rid, key)).fetchone()
            if old is not None and old[0] != text:
                raise UsageError(f"param {key!r} was already logged as {old[0]!r}; params are immutable "
                                 f"(new value {text!r}): log a tag or a new run instead")
            rows.append((rid, key, text, _param_num(text)))
        conn.executemany("INSERT OR IGNORE INTO params(run_id, key, value, value_num) VALUES (?,?,?,?)", rows)

    def set_tags(self, uuid: str, tags: Mapping[str, Any]) -> None:
        self._write(lambda conn: self._set_tags(conn, self._run_id(conn, uuid), tags))

    def _set_tags(self, conn: sqlite3.Connection, rid: int, tags: Mapping[str, Any]) -> None:
        for key in tags:
            if not isinstance(key, str) or not key:
                raise UsageError(f"tag names must be non-empty strings, got {key!r}")
        conn.executemany("INSERT INTO tags(run_id, key, value) VALUES (?,?,?) "
                         "ON CONFLICT(run_id, key) DO UPDATE SET value = excluded.value",
                         [(rid, k, str(v)) for k, v in tags.items()])

    def delete_tag(self, uuid: str, key: str) -> None:
        self._write(lambda conn: conn.execute("DELETE FROM tags WHERE run_id = ? AND key = ?",
                                              (self._run_id(conn, uuid), key)))

    # ---------------------------------------------------------------------------------------------- metrics
    def _key_id(self, conn: sqlite3.Connection, key: str, create: bool = True) -> int | None:
        cached = self._key_ids.get(key)
        if cached is not None:
            return cached
        row = conn.execute("SELECT id FROM metric_keys WHERE name = ?", (key,)).fetchone()
        if row is None:
            if not create:
                return None
            conn.execute("INSERT OR IGNORE INTO metric_keys(name) VALUES (?)", (key,))
            row = conn.execute("SELECT id FROM metric_keys WHERE name = ?", (key,)).fetchone()
        self._key_ids[key] = int(row[0])
        return int(row[0])

    def log_metrics_batch(self, uuid: str, series: Mapping[str, MetricArrays], heartbeat: bool = True) -> int:
        """Append points to several series of one run in one transaction; returns the number of points."""
        prepared = {}
        for key, (steps, ts, vals) in series.items():
            if not isinstance(key, str) or not key:
                raise UsageError(f"metric names must be non-empty strings, got {key!r}")
            steps = np.asarray(steps, dtype=np.int64)
            ts = np.asarray(ts, dtype=np.int64)
            vals = np.asarray(vals, dtype=np.float64)
            if not (steps.shape == ts.shape == vals.shape) or steps.ndim != 1:
                raise UsageError(f"metric {key!r}: steps, timestamps and values must be 1-d arrays of one length")
            if vals.shape[0]:
                prepared[key] = (steps, ts, vals)
        if not prepared:
            return 0

        def tx(conn: sqlite3.Connection) -> int:
            rid = self._run_id(conn, uuid)
            total = 0
            for key, arrays in prepared.items():
                key_id = self._key_id(conn, key)
                assert key_id is not None
                total += append_series(conn, rid, key_id, *arrays)
            if heartbeat:
                conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), rid))
            return total

        return self._write(tx)

    def metric_keys(self, uuid: str) -> list[str]:
        conn = self.db.connect()
        rid = self._run_id(conn, uuid)
        return [r[0] for r in conn.execute("SELECT k.name FROM metric_series s JOIN metric_keys k ON k.id = s.key_id "
                                           "WHERE s.run_id = ? ORDER BY k.name", (rid,))]

    def all_metric_keys(self) -> list[str]:
        return [r[0] for r in self.db.query("SELECT name FROM metric_keys ORDER BY name")]

    def all_param_keys(self, limit: int = 500) -> list[str]:
        return [r[0] for r in self.db.query("SELECT DISTINCT key FROM params ORDER BY key LIMIT ?", (limit,))]

    def metric_history(self, uuid: str, key: str) -> MetricHistory:
        conn = self.db.connect()
        rid = self._run_id(conn, uuid)
        key_id = self._key_id(conn, key, create=False)
        if key_id is None:
            raise NotFoundError(f"run {uuid} has no metric {key!r}")
        hist = read_series(conn, rid, key_id, key)
        if hist is None:
            raise NotFoundError(f"run {uuid} has no metric {key!r}")
        return hist

    def metric_history_tail(self, uuid: str, key: str, start: int) -> MetricHistory:
        """Points of a series after the first ``start`` (in logging order): what a live view has not seen yet."""
        if start < 0:
            raise UsageError("start must not be negative")
        conn = self.db.connect()
        rid = self._run_id(conn, uuid)
        key_id = self._key_id(conn, key, create=False)
        if key_id is None:
            raise NotFoundError(f"run {uuid} has no metric {key!r}")
        return read_series_tail(conn, rid, key_id, key, start)

    def metric_history_downsampled(self, uuid: str, key: str, buckets: int = 2000, x: str = "step",
                                   x_min: float | None = None, x_max: float | None = None) -> MetricHistory:
        if x not in ("step", "time"):
            raise UsageError(f"x must be 'step' or 'time', got {x!r}")
        hist = self.metric_history(uuid, key)
        xs = hist.steps if x == "step" else hist.timestamps_ms
        if xs.shape[0] > 1 and not bool(np.all(xs[1:] >= xs[:-1])):
            order = np.argsort(xs, kind="stable")
            hist = MetricHistory(key, hist.steps[order], hist.timestamps_ms[order], hist.values[order])
            xs = xs[order]
        idx = minmax_indices(xs, hist.values, max(1, buckets), x_min, x_max)
        return MetricHistory(key, hist.steps[idx], hist.timestamps_ms[idx], hist.values[idx])

    # ---------------------------------------------------------------------------------------------- artifacts
    def log_artifact(self, uuid: str, local_path: str | Path, artifact_path: str | None = None) -> list[Artifact]:
        source = Path(local_path)
        if not source.exists():
            raise UsageError(f"artifact {source} does not exist")
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        prefix = (artifact_path or "").strip("/")
        stored: list[tuple[str, str, int]] = []
        for f in files:
            rel = f.name if f == source else (Path(source.name) / f.relative_to(source)).as_posix()
            digest, size = blobs.put_file(self.paths.objects, f)
            stored.append(((f"{prefix}/{rel}" if prefix else rel), digest, size))
        now = time.time()

        def tx(conn: sqlite3.Connection) -> None:
            rid = self._run_id(conn, uuid)
            for path, digest, size in stored:
                conn.execute("INSERT OR IGNORE INTO blobs(digest, size) VALUES (?, ?)", (digest, size))
                conn.execute("INSERT OR REPLACE INTO artifacts(run_id, path, digest, size, created_at) "
                             "VALUES (?,?,?,?,?)", (rid, path, digest, size, now))

        self._write(tx)
        return [Artifact(p, d, s, now) for p, d, s in stored]

    def list_artifacts(self, uuid: str) -> list[Artifact]:
        conn = self.db.connect()
        rid = self._run_id(conn, uuid)
        return [Artifact(*r) for r in conn.execute(
            "SELECT path, digest, size, created_at FROM artifacts WHERE run_id = ? ORDER BY path", (rid,))]

    def artifact_file(self, uuid: str, path: str) -> Path:
        conn = self.db.connect()
        rid = self._run_id(conn, uuid)
        row = conn.execute("SELECT digest FROM artifacts WHERE run_id = ? AND path = ?", (rid, path)).fetchone()
        if row is None:
            raise NotFoundError(f"run {uuid} has no artifact {path!r}")
        return blobs.blob_path(self.paths.objects, row[0])

    def log_input(self, uuid: str, dataset: str, version: str, digest: str = "", context: str = "") -> None:
        self._write(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO run_inputs(run_id, dataset, version, digest, context) VALUES (?,?,?,?,?)",
            (self._run_id(conn, uuid), dataset, str(version), digest, context)))

    def list_inputs(self, uuid: str) -> list[DatasetInput]:
        conn = self.db.connect()
        rid = self._run_id(conn, uuid)
        return [DatasetInput(*r) for r in conn.execute(
            "SELECT dataset, version, digest, context FROM run_inputs WHERE run_id = ? ORDER BY dataset", (rid,))]

    def runs_reading(self, dataset: str, version: str | None = None) -> list[str]:
        """Uuids of the runs that read a dataset (any version, or one): lineage from data to runs."""
        sql = "SELECT r.uuid FROM run_inputs i JOIN runs r ON r.id = i.run_id WHERE i.dataset = ?"
        params: list[Any] = [dataset]
        if version is not None:
            sql += " AND i.version = ?"
            params.append(str(version))
        return [row[0] for row in self.db.query(sql, tuple(params))]

    # ---------------------------------------------------------------------------------------------- spool marks
    def spool_mark(self, spool_id: str) -> int:
        rows = self.db.query("SELECT last_seq FROM spool_imports WHERE spool_id = ?", (spool_id,))
        return int(rows[0][0]) if rows else 0

    def set_spool_mark(self, conn: sqlite3.Connection, spool_id: str, seq: int) -> None:
        conn.execute("INSERT INTO spool_imports(spool_id, last_seq, updated_at) VALUES (?,?,?) "
                     "ON CONFLICT(spool_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), "
                     "updated_at = excluded.updated_at", (spool_id, seq, time.time()))

    # ---------------------------------------------------------------------------------------------- liveness
    def change_counter(self) -> int:
        """Changes whenever this or another connection committed (PRAGMA data_version covers other connections)."""
        version = self.db.connect().execute("PRAGMA data_version").fetchone()[0]
        return int(version) * 1_000_003 + self._own_writes

    def reap_lost_runs(self) -> list[str]:
        """Mark as 'lost' the running runs of this host whose process is gone (killed, crashed, rebooted)."""
        host = socket.gethostname()
        rows = self.db.query("SELECT uuid, pid, pid_start, heartbeat FROM runs WHERE status = 'running' AND host = ? "
                             "AND pid IS NOT NULL", (host,))
        lost = []
        for run_uuid, pid, pid_start, heartbeat in rows:
            alive = pid_alive(pid) and (pid_start is None or process_start_ticks(pid) == pid_start)
            if not alive:
                lost.append((run_uuid, heartbeat))
        for run_uuid, heartbeat in lost:
            self._write(lambda conn, u=run_uuid, hb=heartbeat: conn.execute(
                "UPDATE runs SET status = 'lost', end_time = ? WHERE uuid = ? AND status = 'running'",
                (hb or time.time(), u)))
        return [u for u, _ in lost]

    # ---------------------------------------------------------------------------------------------- helpers
    def _write(self, fn: Any) -> Any:
        result = self.db.write(fn)
        self._own_writes += 1
        return result


def _current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
