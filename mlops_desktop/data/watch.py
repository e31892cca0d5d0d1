"""A watched folder: new or changed files are ingested (appended) into a dataset as they settle."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_desktop.data.contract import Contract
from mlops_desktop.data.ingest import IngestResult, ingest
from mlops_desktop.data.sources import _EXT, SourceOptions
from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

FileKey = tuple[str, int, int]  # resolved path, size, mtime_ns


@dataclass
class WatchRound:
    ingested: list[IngestResult] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, message)


def ingested_files(ws: Workspace, dataset: str) -> set[FileKey]:
    """Every (file, size, mtime) already ingested into any version of the dataset."""
    rows = ws.db.query("SELECT v.source_json FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
                       "WHERE d.name = ?", (dataset,))
    seen: set[FileKey] = set()
    for (text,) in rows:
        for f in json.loads(text).get("files") or []:
            if "resolved" in f:
                seen.add((f["resolved"], f["size"], f["mtime_ns"]))
    return seen


def pending_files(folder: Path, pattern: str, done: set[FileKey], min_age_s: float) -> list[Path]:
    """Files matching ``pattern`` not ingested in their current state, untouched for ``min_age_s`` (settled)."""
    now = time.time()
    out = []
    for path in sorted(folder.glob(pattern)):
        if not path.is_file() or path.name.startswith(".") or path.suffix.lower() not in _EXT:
            continue
        stat = path.stat()
        if (str(path.resolve()), stat.st_size, stat.st_mtime_ns) in done:
            continue
        if now - stat.st_mtime < min_age_s:
            continue  # probably still being written
        out.append(path)
    return out


def watch_round(ws: Workspace, folder: Path, dataset: str, *, pattern: str = "*", options: SourceOptions | None = None,
                contract: Contract | None = None, min_age_s: float = 1.0, failed: set[FileKey] | None = None,
                progress: Progress | None = None) -> WatchRound:
    """Ingest what is new in the folder once: each file on its own, so one bad file does not hold back the rest."""
    if not folder.is_dir():
        raise UsageError(f"{folder} is not a directory")
    failed = failed if failed is not None else set()
    done = ingested_files(ws, dataset) | failed
    result = WatchRound()
    for path in pending_files(folder, pattern, done, min_age_s):
        progress_check(progress)
        stat = path.stat()
        mode = "append" if ws.db.query("SELECT 1 FROM datasets WHERE name = ?", (dataset,)) else "replace"
        try:
            result.ingested.append(ingest(ws, [str(path)], dataset, options=options, contract=contract, mode=mode,
                                          progress=progress))
        except MlopsError as exc:
            failed.add((str(path.resolve()), stat.st_size, stat.st_mtime_ns))  # retried once the file changes
            result.failed.append((str(path), str(exc)))
    return result


def progress_check(progress: Progress | None) -> None:
    if progress is not None:
        progress.check()


def watch(ws: Workspace, folder: Path, dataset: str, *, interval_s: float = 2.0,
          on_round: Callable[[WatchRound], None] | None = None, progress: Progress | None = None,
          **kwargs: object) -> None:
    """Poll the folder until cancelled (progress.cancel() or Ctrl-C); each round's outcome goes to ``on_round``."""
    progress = progress or Progress()
    failed: set[FileKey] = set()
    while True:
        outcome = watch_round(ws, folder, dataset, failed=failed, progress=progress, **kwargs)  # type: ignore[arg-type]
        if on_round is not None and (outcome.ingested or outcome.failed):
            on_round(outcome)
        deadline = time.monotonic() + interval_s
        while time.monotonic() < deadline:
            progress.check()
            time.sleep(min(0.2, interval_s))
