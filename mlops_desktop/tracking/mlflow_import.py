"""Import experiments, runs, params, tags, full metric histories and local artifacts from an MLflow SQLite database."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np

from mlops_desktop.errors import StoreCorruptError, UsageError
from mlops_desktop.progress import Progress

STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed",
          # an imported run cannot still be running here: nothing would ever end it
          "RUNNING": "lost", "SCHEDULED": "lost"}
SYSTEM_TAGS = {"mlflow.runName", "mlflow.user", "mlflow.source.name", "mlflow.source.git.commit",
               "mlflow.parentRunId", "mlflow.note.content"}


@dataclass
class MlflowImport:
    experiments: int = 0
    runs: int = 0
    runs_skipped: int = 0  # already imported earlier (same run id)
    params: int = 0
    metric_points: int = 0
    artifacts: int = 0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sqlite_path_from_uri(uri: str) -> Path:
    if uri.startswith("sqlite:///"):
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy reads them
        return Path(unquote(uri[len("sqlite:///"):]))
    if "://" not in uri:
        return Path(uri)
    raise UsageError(f"only sqlite:///PATH tracking URIs can be imported, got {uri!r}",
                     hint="for a tracking server, export its backend store database and import that file")


def import_mlflow(store: Any, tracking_uri: str, experiments: list[str] | None = None,
                  progress: Progress | None = None) -> MlflowImport:
    path = sqlite_path_from_uri(tracking_uri)
    if not path.is_file():
        raise UsageError(f"no MLflow database at {path}")
    progress = progress or Progress()
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        try:
            tables = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(f"{path} is not a readable SQLite database: {exc}") from None
        missing = {"experiments", "runs", "params", "tags", "metrics"} - tables
        if missing:
            raise UsageError(f"{path} is not an MLflow tracking database (missing tables: {', '.join(sorted(missing))})")
        return _import(store, src, experiments, progress)
    finally:
        src.close()


def _import(store: Any, src: sqlite3.Connection, only: list[str] | None, progress: Progress) -> MlflowImport:
    stats = MlflowImport()
    exp_rows = src.execute("SELECT experiment_id, name FROM experiments WHERE lifecycle_stage = 'active' "
                           "ORDER BY experiment_id").fetchall()
    if only:
        unknown = set(only) - {name for _, name in exp_rows}
        if unknown:
            raise UsageError(f"no MLflow experiment named {', '.join(sorted(unknown))}")
        exp_rows = [(i, n) for i, n in exp_rows if n in only]
    exp_map: dict[int, int] = {}
    for mlflow_id, name in exp_rows:
        exp_map[mlflow_id] = store.get_or_create_experiment(name).id
        stats.experiments += 1
    if not exp_map:
        return stats
    marks = ",".join("?" * len(exp_map))
    runs = src.execute(f"SELECT run_uuid, name, user_id, status, start_time, end_time, source_name, source_version, "
                       f"artifact_uri, experiment_id FROM runs WHERE lifecycle_stage = 'active' AND experiment_id IN "
                       f"({marks}) ORDER BY start_time", list(exp_map)).fetchall()
    tags_by_run: dict[str, dict[str, str]] = {}
    for key, value, run_uuid in src.execute("SELECT key, value, run_uuid FROM tags"):
        tags_by_run.setdefault(run_uuid, {})[key] = value or ""
    # parents before children, so that the parent link can be made
    ordered = sorted(runs, key=lambda r: 1 if "mlflow.parentRunId" in tags_by_run.get(r[0], {}) else 0)
    existing = {r[0] for r in store.db.query("SELECT uuid FROM runs")}
    for index, row in enumerate(ordered):
        progress.update(index / max(1, len(ordered)), f"run {index + 1} of {len(ordered)}")
        run_uuid = row[0]
        if run_uuid in existing:
            stats.runs_skipped += 1
            continue
        _import_run(store, src, row, exp_map[row[9]], tags_by_run.get(run_uuid, {}), existing, stats)
        existing.add(run_uuid)
    progress.update(1.0, "done")
    return stats


def _import_run(store: Any, src: sqlite3.Connection, row: tuple, experiment_id: int, tags: dict[str, str],
                existing: set[str], stats: MlflowImport) -> None:
    run_uuid, name, user, status, start_ms, end_ms, source_name, source_version, artifact_uri, _ = row
    parent = tags.get("mlflow.parentRunId")
    if parent and parent not in existing:
        stats.warnings.append(f"run {run_uuid}: parent {parent} was not imported; imported without a parent")
        parent = None
    params = {k: v for k, v in src.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_uuid,))}
    user_tags = {k: v for k, v in tags.items() if k not in SYSTEM_TAGS}
    user_tags["imported_from"] = "mlflow"

    def tx(conn: sqlite3.Connection) -> None:
        store.create_run(experiment_id, run_uuid=run_uuid, name=name or tags.get("mlflow.runName", ""),
                         user=user or tags.get("mlflow.user", ""), command=source_name or "",
                         host="mlflow-import", git_commit=tags.get("mlflow.source.git.commit") or source_version,
                         parent_uuid=parent, params=params, tags=user_tags,
                         start_time=(start_ms or 0) / 1000.0, status="running")
        notes = tags.get("mlflow.note.content")
        if notes:
            store.update_run(run_uuid, notes=notes)
        series: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for key in [r[0] for r in src.execute("SELECT DISTINCT key FROM metrics WHERE run_uuid = ?", (run_uuid,))]:
            rows = src.execute("SELECT step, timestamp, value, is_nan FROM metrics WHERE run_uuid = ? AND key = ? "
                               "ORDER BY step, timestamp", (run_uuid, key)).fetchall()
            arr = np.array([(s, t) for s, t, _, _ in rows], dtype=np.int64).reshape(-1, 2)
            vals = np.array([math.nan if is_nan else v for _, _, v, is_nan in rows], dtype=np.float64)
            series[key] = (arr[:, 0], arr[:, 1], vals)
            stats.metric_points += len(rows)
        if series:
            store.log_metrics_batch(run_uuid, series, heartbeat=False)
        end = STATUS.get(status or "", "lost")
        store.set_terminated(run_uuid, end, (end_ms / 1000.0) if end_ms else (start_ms or 0) / 1000.0)

    store.db.write(tx)
    stats.runs += 1
    stats.params += len(params)
    stats.artifacts += _import_artifacts(store, run_uuid, artifact_uri, stats)


def _import_artifacts(store: Any, run_uuid: str, artifact_uri: str | None, stats: MlflowImport) -> int:
    if not artifact_uri:
        return 0
    parsed = urlparse(artifact_uri)
    if parsed.scheme not in ("", "file"):
        stats.warnings.append(f"run {run_uuid}: artifacts at {artifact_uri} are not local; not imported")
        return 0
    root = Path(unquote(parsed.path))
    if not root.is_dir():
        return 0
    count = 0
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        parent = f.relative_to(root).parent.as_posix()
        store.log_artifact(run_uuid, f, None if parent == "." else parent)
        count += 1
    return count
