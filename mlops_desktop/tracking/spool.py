"""Import a tracking spool file into the store, idempotently and incrementally (`mlops-desktop runs sync`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlops_desktop.errors import UsageError
from mlops_desktop.tracking import blobs


@dataclass
class SpoolImport:
    spool_id: str
    records: int  # records applied by this import (0 when everything was imported before)
    metric_points: int
    runs: list[str]
    end_offset: int  # byte offset after the last complete line; pass it back as start_offset to resume
    skipped_partial_line: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_records(path: Path, start_offset: int = 0) -> Iterator[dict[str, Any]]:
    for record, _ in _iter_lines(path, start_offset):
        yield record


def _iter_lines(path: Path, start_offset: int) -> Iterator[tuple[dict[str, Any], int]]:
    """(record, offset after its line) for each complete line; an incomplete last line is left for later."""
    with path.open("rb") as fh:
        fh.seek(start_offset)
        offset = start_offset
        line_no = 0
        for raw in fh:
            line_no += 1
            if not raw.endswith(b"\n"):
                return  # still being written (or cut by a crash): not acknowledged, not imported
            offset += len(raw)
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise UsageError(f"{path}: line {line_no} (byte {offset - len(raw)}) is not a spool record: {exc}",
                                 hint="the spool was damaged; records before this line were imported") from None
            if not isinstance(record, dict) or "type" not in record:
                raise UsageError(f"{path}: line {line_no} is not a spool record (no type)")
            yield record, offset


def _header(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise UsageError(f"cannot read spool {path}: {exc.strerror}") from None
    try:
        header = json.loads(first)
        if header.get("type") != "header":
            raise ValueError
        return str(header["spool"])
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError):
        raise UsageError(f"{path} is not an MLOps Desktop spool (its first line is not a spool header)") from None


def import_spool(store: Any, path: str | Path, start_offset: int = 0, batch_records: int = 2000) -> SpoolImport:
    """Apply the records of a spool not imported before. Running it twice adds nothing."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no spool file at {path}")
    spool_id = _header(path)
    mark = store.spool_mark(spool_id)
    objects = path.with_name(path.name + ".blobs")
    stats = SpoolImport(spool_id, 0, 0, [], start_offset, False)
    runs: dict[str, None] = {}
    pending: list[dict[str, Any]] = []
    last_offset = start_offset

    def apply_pending() -> None:
        if not pending:
            return

        def tx(conn: Any) -> int:
            # re-read the mark under the write lock: another process may have imported these records meanwhile
            current = store.spool_mark(spool_id)
            fresh = [r for r in pending if int(r["seq"]) > current]
            for record in fresh:
                stats.metric_points += _apply(store, record, objects)
                if "run" in record:
                    runs.setdefault(record["run"], None)
            if fresh:
                store.set_spool_mark(conn, spool_id, int(fresh[-1]["seq"]))
            return len(fresh)

        stats.records += store.db.write(tx)
        pending.clear()

    for record, offset in _iter_lines(path, start_offset):
        last_offset = offset
        if record["type"] == "header" or int(record.get("seq", 0)) <= mark:
            continue
        pending.append(record)
        if len(pending) >= batch_records:
            apply_pending()
    apply_pending()
    stats.end_offset = last_offset
    stats.skipped_partial_line = path.stat().st_size > last_offset
    stats.runs = list(runs)
    return stats


def _apply(store: Any, record: dict[str, Any], objects: Path) -> int:
    kind = record["type"]
    run = record.get("run")
    if kind == "run_start":
        info = {k: v for k, v in record.items() if k not in ("type", "seq", "run", "experiment")}
        store.ensure_run(run, record.get("experiment") or "Default", **info)
    elif kind == "run_update":
        store.update_run(run, name=record.get("name"), notes=record.get("notes"))
    elif kind == "delete_tag":
        store.delete_tag(run, record["key"])
    elif kind == "params":
        store.log_params(run, record["params"])
    elif kind == "tags":
        store.set_tags(run, record["tags"])
    elif kind == "metrics":
        series = {key: (np.asarray(s, dtype=np.int64), np.asarray(t, dtype=np.int64),
                        np.asarray([np.nan if v is None else v for v in vals], dtype=np.float64))
                  for key, (s, t, vals) in record["series"].items()}
        return store.log_metrics_batch(run, series)
    elif kind == "artifact":
        src = blobs.blob_path(objects, record["digest"])
        if not src.exists():
            raise UsageError(f"spool artifact {record['path']!r} of run {run} is missing: expected {src}")
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            name = Path(record["path"]).name
            staged = Path(tmp) / name
            blobs.export_blob(objects, record["digest"], staged)
            parent = str(Path(record["path"]).parent)
            store.log_artifact(run, staged, None if parent == "." else parent)
    elif kind == "input":
        store.log_input(run, record["dataset"], record["version"], record.get("digest", ""), record.get("context", ""))
    elif kind == "run_end":
        store.set_terminated(run, record["status"], record.get("end_time"))
    else:
        raise UsageError(f"unknown spool record type {kind!r} (seq {record.get('seq')}); "
                         "was it written by a newer MLOps Desktop?")
    return 0
