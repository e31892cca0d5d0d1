"""Where a tracked process's records go: straight into the workspace database, or appended to a spool file."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid as uuidlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mlops_desktop.tracking.store import MetricArrays

SPOOL_VERSION = 1


class Sink(Protocol):
    def start_run(self, info: Mapping[str, Any]) -> None: ...
    def update_run(self, run: str, fields: Mapping[str, str]) -> None: ...
    def delete_tag(self, run: str, key: str) -> None: ...
    def log_params(self, run: str, params: Mapping[str, Any]) -> None: ...
    def set_tags(self, run: str, tags: Mapping[str, Any]) -> None: ...
    def log_metrics(self, run: str, series: Mapping[str, MetricArrays]) -> None: ...
    def log_artifact(self, run: str, local_path: Path, artifact_path: str | None) -> None: ...
    def log_input(self, run: str, dataset: str, version: str, digest: str, context: str) -> None: ...
    def end_run(self, run: str, status: str, end_time: float) -> None: ...
    def last_steps(self, run: str) -> dict[str, int]: ...
    def close(self) -> None: ...


class StoreSink:
    """Writes into a workspace's tracking store (the local default)."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace
        self.store = workspace.tracking

    def start_run(self, info: Mapping[str, Any]) -> None:
        info = {k: v for k, v in info.items() if v is not None}
        run_uuid = info.pop("run")
        resume = info.pop("resume", False)
        experiment_id = info.pop("experiment_id", None)
        experiment = info.pop("experiment", None)
        if self.store.db.query("SELECT 1 FROM runs WHERE uuid = ?", (run_uuid,)):
            # resuming a run (start_run(run_id)) or attaching to one the job runner created: it is now this process's
            from mlops_desktop.procs import process_start_ticks

            pid = info.get("pid")
            self.store.db.write(lambda c: c.execute(
                "UPDATE runs SET status = 'running', end_time = NULL, pid = ?, pid_start = ?, heartbeat = ? "
                "WHERE uuid = ?", (pid, process_start_ticks(pid) if pid else None, time.time(), run_uuid)))
            if info.get("name") or info.get("notes"):
                self.store.update_run(run_uuid, name=info.get("name"), notes=info.get("notes"))
            if info.get("params"):
                self.store.log_params(run_uuid, info["params"])
            if info.get("tags"):
                self.store.set_tags(run_uuid, info["tags"])
            return
        if resume:
            from mlops_desktop.errors import NotFoundError

            raise NotFoundError(f"no run {run_uuid} to resume in {self.workspace.root}",
                                hint="start_run(run_id) resumes an existing run; omit run_id to start a new one")
        if experiment_id is None or (int(experiment_id) == 0 and not self.store.db.query(
                "SELECT 1 FROM experiments WHERE id = 0")):
            # MLflow's default experiment id 0 is our "Default", wherever this workspace created it
            experiment_id = self.store.get_or_create_experiment(experiment or "Default").id
        self.store.create_run(int(experiment_id), run_uuid=run_uuid, **info)

    def update_run(self, run: str, fields: Mapping[str, str]) -> None:
        self.store.update_run(run, name=fields.get("name"), notes=fields.get("notes"))

    def delete_tag(self, run: str, key: str) -> None:
        self.store.delete_tag(run, key)

    def log_params(self, run: str, params: Mapping[str, Any]) -> None:
        self.store.log_params(run, params)

    def set_tags(self, run: str, tags: Mapping[str, Any]) -> None:
        self.store.set_tags(run, tags)

    def log_metrics(self, run: str, series: Mapping[str, MetricArrays]) -> None:
        self.store.log_metrics_batch(run, series)

    def log_artifact(self, run: str, local_path: Path, artifact_path: str | None) -> None:
        self.store.log_artifact(run, local_path, artifact_path)

    def log_input(self, run: str, dataset: str, version: str, digest: str, context: str) -> None:
        self.store.log_input(run, dataset, version, digest, context)

    def end_run(self, run: str, status: str, end_time: float) -> None:
        self.store.set_terminated(run, status, end_time)

    def last_steps(self, run: str) -> dict[str, int]:
        rows = self.store.db.query("SELECT k.name, s.last_step FROM metric_series s JOIN metric_keys k ON "
                                   "k.id = s.key_id JOIN runs r ON r.id = s.run_id WHERE r.uuid = ?", (run,))
        return {k: int(v) for k, v in rows}

    def close(self) -> None:
        self.workspace.close()


class SpoolSink:
    """Appends one JSON record per line to a spool file; `mlops-desktop runs sync SPOOL` imports it.

    The first line is a header with the spool's id; every record carries a sequence number, so an import can
    resume after the last record it saw and importing twice adds nothing. Artifacts are copied beside the
    spool (SPOOL.blobs/sha256) so that the folder can be moved as a whole.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.spool_id, self._seq = self._open_existing()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if self._seq == 0 and os.fstat(self._fd).st_size == 0:
            self._append({"type": "header", "spool": self.spool_id, "version": SPOOL_VERSION}, header=True)

    def _open_existing(self) -> tuple[str, int]:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return uuidlib.uuid4().hex, 0
        from mlops_desktop.tracking.spool import read_records

        spool_id, last_seq = None, 0
        for record in read_records(self.path):
            if record.get("type") == "header":
                spool_id = record["spool"]
            last_seq = max(last_seq, int(record.get("seq", 0)))
        if spool_id is None:
            from mlops_desktop.errors import UsageError

            raise UsageError(f"{self.path} exists but is not an MLOps Desktop spool (no header line)")
        return spool_id, last_seq

    def _append(self, record: dict[str, Any], header: bool = False) -> None:
        with self._lock:
            if not header:
                self._seq += 1
                record["seq"] = self._seq
            line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
            # one write() per record: a crash leaves at most one incomplete last line, which import ignores
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]

    def start_run(self, info: Mapping[str, Any]) -> None:
        if info.get("experiment_id") is not None:
            from mlops_desktop.errors import UsageError

            raise UsageError("a spooled run names its experiment (the ids are the workspace's)",
                             hint="use set_experiment(NAME) or start_run(experiment=NAME)")
        self._append({"type": "run_start", **{k: v for k, v in info.items()
                                              if v is not None and k not in ("resume", "experiment_id")}})

    def update_run(self, run: str, fields: Mapping[str, str]) -> None:
        self._append({"type": "run_update", "run": run, **{k: v for k, v in fields.items()
                                                             if k in ("name", "notes")}})

    def delete_tag(self, run: str, key: str) -> None:
        self._append({"type": "delete_tag", "run": run, "key": key})

    def log_params(self, run: str, params: Mapping[str, Any]) -> None:
        self._append({"type": "params", "run": run, "params": {k: _jsonable(v) for k, v in params.items()}})

    def set_tags(self, run: str, tags: Mapping[str, Any]) -> None:
        self._append({"type": "tags", "run": run, "tags": {k: str(v) for k, v in tags.items()}})

    def log_metrics(self, run: str, series: Mapping[str, MetricArrays]) -> None:
        self._append({"type": "metrics", "run": run,
                      "series": {k: [s.tolist(), t.tolist(), v.tolist()] for k, (s, t, v) in series.items()}})

    def log_artifact(self, run: str, local_path: Path, artifact_path: str | None) -> None:
        from mlops_desktop.tracking import blobs

        objects = self.path.with_name(self.path.name + ".blobs")
        files = [local_path] if local_path.is_file() else sorted(p for p in local_path.rglob("*") if p.is_file())
        prefix = (artifact_path or "").strip("/")
        for f in files:
            rel = f.name if f == local_path else (Path(local_path.name) / f.relative_to(local_path)).as_posix()
            digest, size = blobs.put_file(objects, f)
            self._append({"type": "artifact", "run": run, "path": f"{prefix}/{rel}" if prefix else rel,
                          "digest": digest, "size": size})

    def log_input(self, run: str, dataset: str, version: str, digest: str, context: str) -> None:
        self._append({"type": "input", "run": run, "dataset": dataset, "version": version, "digest": digest,
                      "context": context})

    def end_run(self, run: str, status: str, end_time: float) -> None:
        self._append({"type": "run_end", "run": run, "status": status, "end_time": end_time})

    def last_steps(self, run: str) -> dict[str, int]:
        return {}

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
