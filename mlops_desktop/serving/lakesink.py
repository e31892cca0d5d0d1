"""Prediction-log segments -> a lake dataset: one append version per commit interval, never one per request.

Naming: a served model logs into `predictions_<model>` (letters, digits and underscores of the model name; a
deployment passes its own, e.g. `predictions_<deployment>`); every version of the model appends to the same
dataset, told apart by the `version` column (and `arm` behind the A/B router), so one SQL query compares them.
A signature that no longer fits the dataset's columns goes to `<dataset>_<8 hex of its schema>` instead of
breaking the queries over the old one.

Each commit is a lake append: the base version's parts are hard-linked, the new closed segments are hard-linked in
(no copy: the log folder and the lake share the bytes), and runs of small parts are merged so that a version has a
bounded number of files however long the server runs. The last committed segment is recorded in the version's
`source`, so a crash between the commit and anything else never commits a segment twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.serving.predlog import Segment, list_segments

if TYPE_CHECKING:
    from mlops_desktop.data.catalog import DatasetVersion
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)

SMALL_PART = 16 << 20  # parts below this are merged ...
MAX_SMALL_PARTS = 16   # ... once there are more than this many of them


def dataset_name(model: str, prefix: str = "predictions") -> str:
    """`predictions_<model>` as a lake (SQL) identifier: other characters become `_`, at most 128 characters."""
    slug = re.sub(r"[^A-Za-z0-9_]", "_", model).strip("_") or "model"
    name = f"{prefix}_{slug}"
    return name[:128]


def log_id(directory: Path) -> str:
    """A stable id of one log folder, so the lake can tell whose segments it already holds."""
    path = directory / "log_id"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = uuid.uuid4().hex
        tmp = path.with_suffix(".tmp")
        tmp.write_text(value, encoding="utf-8")
        os.replace(tmp, path)
        return value


class LakeCommitter:
    """Commits a log folder's closed segments to the lake on a timer and once more when closed."""

    def __init__(self, ws: Workspace, directory: Path, dataset: str, *, interval_s: float = 600.0,
                 model: str = "", version: str = "") -> None:
        from mlops_desktop.data.catalog import check_name

        self.ws = ws
        self.directory = Path(directory)
        self.dataset = check_name(dataset)
        self.interval_s = interval_s
        self.model, self.version = model, version
        self.log_id = log_id(self.directory)
        self.last_error: str | None = None
        self.commits = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="prediction-log-lake", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.commit_pending()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        self.commit_pending()

    def commit_pending(self) -> DatasetVersion | None:
        """Append every closed segment not in the lake yet as one version; None when there was nothing new."""
        from mlops_desktop.data.catalog import ConcurrentChangeError
        from mlops_desktop.errors import MlopsError

        with self._lock:
            try:
                version = last = self._commit()
                while last is not None:  # segments of another schema (an upgrade) are committed one run at a time
                    last = self._commit()
                    version = last or version
                self.last_error = None
                return version
            except ConcurrentChangeError:
                self.last_error = "another writer appended meanwhile; retrying at the next commit"
            except (MlopsError, OSError) as exc:  # a full disk, a locked database: the segments stay for later
                self.last_error = str(exc).splitlines()[0]
                log.warning("prediction log: lake commit to %s failed: %s", self.dataset, self.last_error)
            return None

    def _commit(self) -> DatasetVersion | None:
        from mlops_desktop.data import catalog, lake
        from mlops_desktop.data.catalog import NewVersion

        segments = list_segments(self.directory, self._committed_seq())
        if not segments:
            return None
        schema = _schema(segments[0].path)
        for i, seg in enumerate(segments[1:], 1):  # one commit holds segments of one schema only
            if _schema(seg.path) != schema:
                segments = segments[:i]
                break
        name = self.dataset
        base = catalog.latest(self.ws.db, name)
        if base is not None and base.schema != schema:
            name = f"{name[:119]}_{hashlib.sha256(repr(sorted(schema.items())).encode()).hexdigest()[:8]}"
            base = catalog.latest(self.ws.db, name)
        staging = lake.new_staging(self.ws)
        try:
            known = lake.link_parts(lake.version_dir(self.ws, base), staging) if base is not None else {}
            stamp = time.time_ns()
            for seg in segments:
                _link(seg.path, staging.data / f"{stamp:020d}-{seg.seq:010d}.parquet")
            _compact(staging.data, known)
            content, nbytes, _ = lake.finish_staging(staging, known)
        except BaseException:
            staging.discard()
            raise
        rows = (base.row_count if base is not None else 0) + sum(s.rows for s in segments)
        new = NewVersion(
            name=name, path="", schema=schema, row_count=rows, bytes=nbytes, content_hash=content,
            source={"kind": "prediction_log", "log_id": self.log_id, "model": self.model, "version": self.version,
                    "first_segment": segments[0].seq, "last_segment": segments[-1].seq,
                    "rows_added": sum(s.rows for s in segments)},
            mode="append" if base is not None else "replace", rows_in=sum(s.rows for s in segments),
            rows_rejected=0, parent_ids=[base.id] if base is not None else [],
            expect_base_id=base.id if base is not None else None)
        version = lake.commit(self.ws, staging, new)
        self.commits += 1
        return version

    def _committed_seq(self) -> int:
        """The last segment of this log folder that some version of the dataset (or its fallback) holds."""
        # the log id is unique to this folder, so any dataset (the model's or its fallback) may hold it
        rows = self.ws.db.query("SELECT source_json FROM dataset_versions WHERE source_json LIKE ? "
                                "ORDER BY id DESC LIMIT 1", (f'%"log_id": "{self.log_id}"%',))
        if not rows:
            return 0
        import json

        return int(json.loads(rows[0][0]).get("last_segment") or 0)


def _schema(path: Path) -> dict[str, str]:
    import polars as pl

    from mlops_desktop.data.contract import dtype_name

    return {name: dtype_name(dtype) for name, dtype in pl.read_parquet_schema(path).items()}


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _compact(data: Path, known: dict[str, str]) -> None:
    """Merge the small parts (oldest first) into one file once there are too many, keeping row order."""
    import pyarrow.parquet as pq

    parts = sorted(data.rglob("*.parquet"))
    small = [p for p in parts if p.stat().st_size < SMALL_PART]
    if len(small) <= MAX_SMALL_PARTS:
        return
    # merge a contiguous run of small parts, so the order of rows across parts is kept
    run: list[Path] = []
    for p in parts:
        if p.stat().st_size < SMALL_PART:
            run.append(p)
        elif len(run) > 1:
            break
        else:
            run = []
    if len(run) < 2:
        return
    target = run[0].with_name(run[0].name + ".merging")
    with pq.ParquetWriter(target, pq.read_schema(run[0]), compression="zstd") as writer:
        for p in run:
            writer.write_table(pq.read_table(p))
    for p in run:
        p.unlink()
        known.pop(p.relative_to(data.parent).as_posix(), None)
    os.replace(target, run[0])
    with contextlib.suppress(KeyError):
        known.pop(run[0].relative_to(data.parent).as_posix())


def segments_payload(segments: list[Segment]) -> dict[str, Any]:
    return {"segments": [s.to_dict() for s in segments],
            "next_after": segments[-1].seq if segments else None}
