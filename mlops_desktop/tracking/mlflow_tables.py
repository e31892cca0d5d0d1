"""Store operations for what MLflow's tracking API has beyond our core store: experiment tags and lifecycle,
MLflow dataset inputs, and MLflow 3's logged models with their own artifacts (migration 0008_tracking_mlflow)."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.tracking import blobs
from mlops_desktop.tracking.entities import Artifact, Experiment
from mlops_desktop.tracking.sqlite_store import SqliteTrackingStore

LOGGED_MODEL_STATUSES = ("PENDING", "READY", "FAILED")


@dataclass
class LoggedModel:
    model_id: str
    experiment_id: int
    name: str
    source_run_id: str | None
    model_type: str
    status: str
    status_message: str
    tags: dict[str, str]
    params: dict[str, str]
    created_at: float
    updated_at: float
    deleted: bool = False
    artifacts: list[Artifact] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "experiment_id": self.experiment_id, "name": self.name,
                "source_run_id": self.source_run_id, "model_type": self.model_type, "status": self.status,
                "tags": self.tags, "params": self.params, "created_at": self.created_at,
                "artifacts": [a.to_dict() for a in self.artifacts]}


@dataclass(frozen=True)
class ExperimentDetail:
    experiment: Experiment
    tags: dict[str, str]
    deleted: bool


_MODEL_COLUMNS = ("m.id, m.model_id, m.experiment_id, m.name, (SELECT r.uuid FROM runs r WHERE r.id = m.source_run_id),"
                  " m.model_type, m.status, m.status_message, m.tags, m.params, m.created_at, m.updated_at,"
                  " m.deleted_at")


class MlflowTables:
    """Experiment tags/lifecycle and logged models over one workspace's tracking store."""

    def __init__(self, store: SqliteTrackingStore) -> None:
        self.store = store
        self.db = store.db

    # ------------------------------------------------------------------------------------------ experiments
    def experiment_details(self, include_deleted: bool = True) -> list[ExperimentDetail]:
        rows = self.db.query("SELECT id, name, description, created_at, deleted_at FROM experiments ORDER BY id")
        tags: dict[int, dict[str, str]] = {}
        for exp_id, key, value in self.db.query("SELECT experiment_id, key, value FROM experiment_tags"):
            tags.setdefault(int(exp_id), {})[key] = value
        out = [ExperimentDetail(Experiment(r[0], r[1], r[2], r[3]), tags.get(int(r[0]), {}), r[4] is not None)
               for r in rows]
        return out if include_deleted else [d for d in out if not d.deleted]

    def experiment_detail(self, experiment_id: int) -> ExperimentDetail:
        rows = self.db.query("SELECT id, name, description, created_at, deleted_at FROM experiments WHERE id = ?",
                             (experiment_id,))
        if not rows:
            raise NotFoundError(f"no experiment with id {experiment_id}")
        r = rows[0]
        tags = dict(self.db.query("SELECT key, value FROM experiment_tags WHERE experiment_id = ?", (r[0],)))
        return ExperimentDetail(Experiment(r[0], r[1], r[2], r[3]), tags, r[4] is not None)

    def set_experiment_tags(self, experiment_id: int, tags: Mapping[str, Any]) -> None:
        for key in tags:
            if not isinstance(key, str) or not key:
                raise UsageError(f"tag names must be non-empty strings, got {key!r}")

        def tx(conn: sqlite3.Connection) -> None:
            _check_experiment(conn, experiment_id)
            conn.executemany("INSERT INTO experiment_tags(experiment_id, key, value) VALUES (?,?,?) "
                             "ON CONFLICT(experiment_id, key) DO UPDATE SET value = excluded.value",
                             [(experiment_id, k, str(v)) for k, v in tags.items()])

        self.store._write(tx)

    def delete_experiment_tag(self, experiment_id: int, key: str) -> None:
        self.store._write(lambda c: c.execute("DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?",
                                              (experiment_id, key)))

    def set_experiment_deleted(self, experiment_id: int, deleted: bool) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            _check_experiment(conn, experiment_id)
            conn.execute("UPDATE experiments SET deleted_at = ? WHERE id = ?",
                         (time.time() if deleted else None, experiment_id))

        self.store._write(tx)

    def rename_experiment(self, experiment_id: int, new_name: str) -> None:
        new_name = new_name.strip()
        if not new_name:
            raise UsageError("an experiment needs a name")

        def tx(conn: sqlite3.Connection) -> None:
            _check_experiment(conn, experiment_id)
            other = conn.execute("SELECT id FROM experiments WHERE name = ?", (new_name,)).fetchone()
            if other is not None and other[0] != experiment_id:
                raise UsageError(f"an experiment named {new_name!r} already exists (id {other[0]})")
            conn.execute("UPDATE experiments SET name = ? WHERE id = ?", (new_name, experiment_id))

        self.store._write(tx)

    # ------------------------------------------------------------------------------------------ dataset inputs
    def log_dataset_input(self, run_uuid: str, name: str, digest: str, context: str, *, version: str = "",
                          source_type: str = "", source: str = "", schema: str = "", profile: str = "") -> None:
        """An MLflow dataset (name, digest, source...) as a run input; its version is its digest unless given."""
        def tx(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO run_inputs(run_id, dataset, version, digest, context, source_type,"
                         " source, schema, profile) VALUES (?,?,?,?,?,?,?,?,?)",
                         (self.store._run_id(conn, run_uuid), name, version or digest, digest, context, source_type,
                          source, schema, profile))

        self.store._write(tx)

    def dataset_inputs(self, run_uuid: str) -> list[dict[str, str]]:
        conn = self.db.connect()
        rid = self.store._run_id(conn, run_uuid)
        cols = ("dataset", "version", "digest", "context", "source_type", "source", "schema", "profile")
        return [dict(zip(cols, r, strict=True)) for r in conn.execute(
            f"SELECT {', '.join(cols)} FROM run_inputs WHERE run_id = ? ORDER BY dataset, version", (rid,))]

    # ------------------------------------------------------------------------------------------ logged models
    def create_logged_model(self, experiment_id: int, name: str | None = None, source_run: str | None = None,
                            tags: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
                            model_type: str | None = None) -> LoggedModel:
        model_id = "m-" + uuidlib.uuid4().hex
        now = time.time()
        name = name or model_id[:10]

        def tx(conn: sqlite3.Connection) -> None:
            _check_experiment(conn, experiment_id)
            rid = self.store._run_id(conn, source_run) if source_run else None
            conn.execute("INSERT INTO logged_models(model_id, experiment_id, name, source_run_id, model_type, tags,"
                         " params, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                         (model_id, experiment_id, name, rid, model_type or "",
                          json.dumps({k: str(v) for k, v in (tags or {}).items()}),
                          json.dumps({k: str(v) for k, v in (params or {}).items()}), now, now))

        self.store._write(tx)
        return self.get_logged_model(model_id)

    def get_logged_model(self, model_id: str, allow_deleted: bool = False) -> LoggedModel:
        conn = self.db.connect()
        row = conn.execute(f"SELECT {_MODEL_COLUMNS} FROM logged_models m WHERE m.model_id = ?",
                           (model_id,)).fetchone()
        if row is None or (row[12] is not None and not allow_deleted):
            raise NotFoundError(f"no logged model {model_id!r}")
        return self._model(conn, row)

    def _model(self, conn: sqlite3.Connection, row: tuple) -> LoggedModel:
        arts = [Artifact(*a) for a in conn.execute(
            "SELECT path, digest, size, created_at FROM logged_model_artifacts WHERE model_id = ? ORDER BY path",
            (row[0],))]
        return LoggedModel(row[1], row[2], row[3], row[4], row[5], row[6], row[7], json.loads(row[8]),
                           json.loads(row[9]), row[10], row[11], row[12] is not None, arts)

    def search_logged_models(self, experiment_ids: list[int] | None = None, source_run: str | None = None,
                             include_deleted: bool = False) -> list[LoggedModel]:
        conn = self.db.connect()
        where, params = ["1"], []
        if not include_deleted:
            where.append("m.deleted_at IS NULL")
        if experiment_ids is not None:
            where.append(f"m.experiment_id IN ({','.join('?' * len(experiment_ids))})")
            params.extend(experiment_ids)
        if source_run is not None:
            where.append("(m.source_run_id = ? OR m.id IN (SELECT model_id FROM run_outputs WHERE run_id = ?))")
            rid = self.store._run_id(conn, source_run)
            params.extend([rid, rid])
        rows = conn.execute(f"SELECT {_MODEL_COLUMNS} FROM logged_models m WHERE {' AND '.join(where)} "
                            "ORDER BY m.created_at DESC, m.id DESC", params).fetchall()
        return [self._model(conn, r) for r in rows]

    def update_logged_model(self, model_id: str, *, status: str | None = None, tags: Mapping[str, Any] | None = None,
                            delete_tag: str | None = None, deleted: bool | None = None) -> None:
        if status is not None and status not in LOGGED_MODEL_STATUSES:
            raise UsageError(f"logged model status must be one of {', '.join(LOGGED_MODEL_STATUSES)}, got {status!r}")

        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id, tags FROM logged_models WHERE model_id = ?", (model_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no logged model {model_id!r}")
            current = json.loads(row[1])
            if tags:
                current.update({k: str(v) for k, v in tags.items()})
            if delete_tag is not None:
                current.pop(delete_tag, None)
            conn.execute("UPDATE logged_models SET tags = ?, updated_at = ? WHERE id = ?",
                         (json.dumps(current), time.time(), row[0]))
            if status is not None:
                conn.execute("UPDATE logged_models SET status = ? WHERE id = ?", (status, row[0]))
            if deleted is not None:
                conn.execute("UPDATE logged_models SET deleted_at = ? WHERE id = ?",
                             (time.time() if deleted else None, row[0]))

        self.store._write(tx)

    def log_model_output(self, run_uuid: str, model_id: str, step: int = 0) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM logged_models WHERE model_id = ?", (model_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no logged model {model_id!r}")
            conn.execute("INSERT OR REPLACE INTO run_outputs(run_id, model_id, step) VALUES (?,?,?)",
                         (self.store._run_id(conn, run_uuid), row[0], int(step)))

        self.store._write(tx)

    def log_model_artifact(self, model_id: str, local_path: Path, artifact_path: str | None = None) -> list[Artifact]:
        """Copy a file (or a folder's files, under its name) into a logged model's artifacts."""
        source = Path(local_path)
        if not source.exists():
            raise UsageError(f"artifact {source} does not exist")
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        prefix = (artifact_path or "").strip("/")
        stored = []
        for f in files:
            rel = f.name if f == source else (Path(source.name) / f.relative_to(source)).as_posix()
            digest, size = blobs.put_file(self.store.paths.objects, f)
            stored.append((f"{prefix}/{rel}" if prefix else rel, digest, size))
        now = time.time()

        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT id FROM logged_models WHERE model_id = ?", (model_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no logged model {model_id!r}")
            for path, digest, size in stored:
                conn.execute("INSERT OR IGNORE INTO blobs(digest, size) VALUES (?, ?)", (digest, size))
                conn.execute("INSERT OR REPLACE INTO logged_model_artifacts(model_id, path, digest, size, created_at)"
                             " VALUES (?,?,?,?,?)", (row[0], path, digest, size, now))

        self.store._write(tx)
        return [Artifact(p, d, s, now) for p, d, s in stored]

    def model_artifact_file(self, model_id: str, path: str) -> Path:
        model = self.get_logged_model(model_id, allow_deleted=True)
        for a in model.artifacts:
            if a.path == path:
                return blobs.blob_path(self.store.paths.objects, a.digest)
        raise NotFoundError(f"logged model {model_id} has no artifact {path!r}")


def _check_experiment(conn: sqlite3.Connection, experiment_id: int) -> None:
    if conn.execute("SELECT 1 FROM experiments WHERE id = ?", (experiment_id,)).fetchone() is None:
        raise NotFoundError(f"no experiment with id {experiment_id}")
