"""Ingestion: sources -> contract checks -> good rows as a new immutable version, bad rows to its rejects. Atomic."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import catalog, lake
from mlops_desktop.data.catalog import NewVersion
from mlops_desktop.data.contract import Contract, dtype_name
from mlops_desktop.data.sources import LINE, Piece, SourceOptions, expand, pieces
from mlops_desktop.data.writer import REJECT_FILE, REJECT_LINE, REJECT_REASON, Counts, Writer
from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

__all__ = ["REJECT_FILE", "REJECT_LINE", "REJECT_REASON", "IngestResult", "build_version", "derive", "ingest",
           "schema_drift"]


@dataclass
class IngestResult:
    dataset: str
    version: int
    rows_in: int
    rows_stored: int
    rows_rejected: int
    row_count: int
    bytes: int
    content_hash: str
    drift: list[str]
    files: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    blank_lines: int = 0  # CSV lines with nothing on them: skipped, they are not rows
    notes: list[str] = field(default_factory=list)  # about inferred types (a column of identifiers kept as text)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def ingest(ws: Workspace, paths: list[str], dataset: str, *, options: SourceOptions | None = None,
           contract: Contract | None = None, mode: str = "replace", progress: Progress | None = None,
           partition_by: list[str] | None = None) -> IngestResult:
    """Ingest files (paths, globs, directories) into a new version of ``dataset``; nothing is stored on failure.

    ``partition_by`` writes one folder per value of those columns (``col=value/``); an append keeps the
    partitioning of the version it appends to.
    """
    if mode not in ("replace", "append"):
        raise UsageError(f"unknown mode {mode!r}", hint="use append or replace")
    options = options or SourceOptions()
    files = expand(paths)
    typed = frozenset(c.name for c in contract.columns.values() if c.type) if contract else frozenset()

    def produce(writer: Writer, tmpdir: Path, progress: Progress) -> list[dict[str, Any]]:
        per_file: list[dict[str, Any]] = []
        for index, path in enumerate(files):
            sub = progress.sub(index / len(files), (index + 1) / len(files))
            counts = Counts()
            notes: dict[str, str] = {}
            for piece in pieces(path, options, tmpdir, typed):
                writer.write(piece, counts, sub, options)
                notes |= piece.notes
            stat = path.stat()
            per_file.append({"path": str(path), "resolved": str(path.resolve()), "size": stat.st_size,
                             "mtime_ns": stat.st_mtime_ns, "rows_in": counts.rows_in,
                             "rows_stored": counts.stored, "rows_rejected": counts.rejected,
                             "blank_lines": counts.blank_lines}
                            | ({"notes": notes} if notes else {}))
        return per_file

    source = {"paths": [str(Path(p).resolve()) for p in files], "options": options.to_dict(),
              "contract": contract.to_dict() if contract and not contract.is_empty() else None}
    return build_version(ws, dataset, produce, contract=contract, mode=mode, source=source, progress=progress,
                         options=options, partition_by=partition_by)


def derive(ws: Workspace, dataset: str, frame: pl.LazyFrame, *, label: str, parent_ids: list[int],
           step: str, fingerprint: str, source: dict[str, Any], contract: Contract | None = None,
           progress: Progress | None = None, partition_by: list[str] | None = None) -> IngestResult:
    """Store a computed frame (a pipeline step's output) as a new version, through the same contract checks."""
    schema = dict(frame.collect_schema())

    def produce(writer: Writer, tmpdir: Path, progress: Progress) -> list[dict[str, Any]]:
        counts = Counts()
        piece = Piece(label=label, path=tmpdir, fmt="derived", frame=frame.with_row_index(LINE, offset=1),
                      schema=schema, inferred=schema, line_kind="row")
        writer.write(piece, counts, progress, SourceOptions())
        return [{"path": label, "rows_in": counts.rows_in, "rows_stored": counts.stored,
                 "rows_rejected": counts.rejected}]

    return build_version(ws, dataset, produce, contract=contract, mode="derive", source=source, progress=progress,
                         options=SourceOptions(), parent_ids=parent_ids, step=step, fingerprint=fingerprint,
                         partition_by=partition_by)


def build_version(ws: Workspace, dataset: str, produce: Any, *, contract: Contract | None, mode: str,
                  source: dict[str, Any], progress: Progress | None, options: SourceOptions,
                  parent_ids: list[int] | None = None, step: str | None = None,
                  fingerprint: str | None = None, partition_by: list[str] | None = None) -> IngestResult:
    """Stage, fill (``produce``), check, hash and atomically commit one version; discard everything on failure."""
    started = time.monotonic()
    catalog.check_name(dataset)
    progress = progress or Progress()
    previous = catalog.latest(ws.db, dataset)
    base = previous if mode == "append" else None
    partitions = _partitioning(base, partition_by)
    if partitions:
        source = source | {"partition_by": list(partitions)}
    staging = lake.new_staging(ws)
    tmpdir = staging.root / "tmp"
    tmpdir.mkdir()
    try:
        known = lake.link_parts(lake.version_dir(ws, base), staging) if base else {}
        writer = Writer(staging, contract or Contract(), base, ws, first_part=len(known), partition_by=partitions)
        try:
            per_file = produce(writer, tmpdir, progress)
            hashes = writer.part_hashes()
        finally:
            writer.close()
        progress.check()
        if writer.schema is None:
            raise UsageError("nothing to ingest")
        schema = {k: dtype_name(v) for k, v in writer.schema.items()}
        drift = schema_drift(previous.schema if previous else None, schema)
        if base is not None and drift:
            raise UsageError(f"cannot append to {base.ref}: the schema differs ({'; '.join(drift)})",
                             hint="use --mode replace to start a new version with the new schema")
        _shutil_rmtree(tmpdir)
        progress.update(0.99, "hashing and committing")
        content, total_bytes, _ = lake.finish_staging(staging, known | hashes)
        rows_in = sum(f["rows_in"] for f in per_file)
        stored = sum(f["rows_stored"] for f in per_file)
        rejected = sum(f["rows_rejected"] for f in per_file)
        parents = list(parent_ids or []) + ([base.id] if base else [])
        new = NewVersion(name=dataset, path="", schema=schema, row_count=(base.row_count if base else 0) + stored,
                         bytes=total_bytes, content_hash=content, source=source | {"files": per_file}, mode=mode,
                         rows_in=rows_in, rows_rejected=rejected, drift=drift, parent_ids=parents,
                         producer_step=step, producer_fingerprint=fingerprint,
                         expect_base_id=base.id if base else None)
        version = lake.commit(ws, staging, new)
    except BaseException:
        staging.discard()
        raise
    progress.update(1.0, f"stored {version.ref}")
    return IngestResult(dataset=dataset, version=version.version, rows_in=rows_in, rows_stored=stored,
                        rows_rejected=rejected, row_count=version.row_count, bytes=version.bytes,
                        content_hash=version.content_hash, drift=drift, files=per_file,
                        seconds=round(time.monotonic() - started, 3),
                        blank_lines=sum(f.get("blank_lines", 0) for f in per_file),
                        notes=_notes(per_file, writer.schema))


def _notes(per_file: list[dict[str, Any]], schema: dict[str, Any] | None) -> list[str]:
    """One line per column whose inferred type needs a word (kept as text although it looks numeric)."""
    out: dict[str, str] = {}
    for entry in per_file:
        for column, note in (entry.get("notes") or {}).items():
            if schema is None or dtype_name(schema.get(column)) == "string":
                out.setdefault(column, f"column {column}: {note}")
    return list(out.values())


def _partitioning(base: Any, requested: list[str] | None) -> tuple[str, ...]:
    """The partition columns of a new version: as asked, or for an append those of the base (which must agree)."""
    asked = tuple(dict.fromkeys(c.strip() for c in requested or [] if c.strip()))
    if base is None:
        return asked
    existing = tuple(base.source.get("partition_by") or ())
    if requested is not None and asked != existing:
        def say(cols: tuple[str, ...]) -> str:
            return "partitioned by " + ", ".join(cols) if cols else "not partitioned"

        raise UsageError(f"cannot append to {base.ref}: it is {say(existing)}, the new rows would be {say(asked)}",
                         hint="leave out --partition-by to keep the base's partitioning, or use --mode replace")
    return existing


def _shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def schema_drift(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Human-readable differences between two schemas (empty when equal or when there is no previous version)."""
    if old is None:
        return []
    out = [f"added column {c} ({t})" for c, t in new.items() if c not in old]
    out += [f"removed column {c} ({t})" for c, t in old.items() if c not in new]
    out += [f"column {c} changed type {old[c]} -> {t}" for c, t in new.items() if c in old and old[c] != t]
    return out
