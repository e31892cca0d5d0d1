"""Lake storage: staging directories, atomic commit of a version (rename + catalog insert), hashing and reading."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import catalog
from mlops_desktop.data.catalog import DatasetVersion, NewVersion
from mlops_desktop.errors import UsageError
from mlops_desktop.procs import pid_alive

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

MANIFEST = "manifest.json"
STAGING = ".staging"


@dataclass
class Staging:
    """A private directory where one version is written before it is committed; never visible in the catalog."""

    root: Path
    token: str
    data: Path = field(init=False)
    rejects: Path = field(init=False)

    def __post_init__(self) -> None:
        self.data = self.root / "data"
        self.rejects = self.root / "rejects"
        self.data.mkdir(parents=True)
        self.rejects.mkdir()

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def new_staging(ws: Workspace) -> Staging:
    sweep(ws)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    return Staging(ws.paths.lake / STAGING / token, token)


def _owner_pid(token: str) -> int | None:
    head = token.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def sweep(ws: Workspace) -> list[Path]:
    """Remove what killed ingestions left behind: staging dirs and uncommitted version dirs of dead processes."""
    removed: list[Path] = []
    lake = ws.paths.lake
    staging = lake / STAGING
    if staging.is_dir():
        for entry in staging.iterdir():
            pid = _owner_pid(entry.name)
            if pid is None or not pid_alive(pid):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    if not lake.is_dir():
        return removed
    known = {row[0] for row in ws.db.query("SELECT path FROM dataset_versions")}
    for dataset_dir in lake.iterdir():
        if dataset_dir.name.startswith(".") or not dataset_dir.is_dir():
            continue
        for version_dir in dataset_dir.iterdir():
            rel = f"{dataset_dir.name}/{version_dir.name}"
            pid = _owner_pid(version_dir.name)
            if rel in known or pid is None or pid_alive(pid):
                continue
            # The owner is dead, so it can no longer commit: asking the catalog again now is authoritative
            # (it may have committed between our first read and its exit).
            if ws.db.query("SELECT 1 FROM dataset_versions WHERE path = ?", (rel,)):
                continue
            shutil.rmtree(version_dir, ignore_errors=True)
            removed.append(version_dir)
    return removed


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(4 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def link_parts(base_dir: Path, staging: Staging) -> dict[str, str]:
    """Append: the new version shares the base version's immutable part files (hard links, else copies)."""
    manifest = read_manifest(base_dir)
    for rel in manifest["parts"]:
        src, dst = base_dir / rel, staging.root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    return dict(manifest["parts"])


def read_manifest(version_dir: Path) -> dict[str, Any]:
    return json.loads((version_dir / MANIFEST).read_text(encoding="utf-8"))


def finish_staging(staging: Staging, known_hashes: dict[str, str] | None = None) -> tuple[str, int, int]:
    """Hash and sync the staged files and write the manifest; returns (content hash, data bytes, reject files)."""
    known = known_hashes or {}
    parts: dict[str, str] = {}
    total = 0
    for path in sorted(staging.data.rglob("*.parquet")):
        rel = path.relative_to(staging.root).as_posix()
        parts[rel] = known.get(rel) or sha256_file(path)
        total += path.stat().st_size
        _fsync(path)
    rejects = sorted(p.relative_to(staging.root).as_posix() for p in staging.rejects.rglob("*.parquet"))
    for rel in rejects:
        _fsync(staging.root / rel)
    # parts are named in row order (NNNNN-token.parquet); the hash covers their contents in that order, not names
    content = hashlib.sha256("".join(f"{h}\n" for h in parts.values()).encode()).hexdigest()
    (staging.root / MANIFEST).write_text(json.dumps({"parts": parts, "rejects": rejects}, indent=1), encoding="utf-8")
    _fsync(staging.root / MANIFEST)
    return content, total, len(rejects)


def commit(ws: Workspace, staging: Staging, new: NewVersion) -> DatasetVersion:
    """Make a staged version visible: rename into the lake and insert the catalog row in one transaction.

    A crash before COMMIT leaves either the staging dir or an uncatalogued version dir of a dead process, both of
    which ``sweep`` removes; readers only ever see catalogued versions.
    """
    final_rel = f"{new.name}/{staging.token}"
    final = ws.paths.lake / final_rel
    final.parent.mkdir(parents=True, exist_ok=True)
    new = NewVersion(**{**new.__dict__, "path": final_rel})
    renamed = False
    try:
        with ws.db.transaction() as conn:
            version_id, _number = catalog.insert_version(conn, new)
            os.replace(staging.root, final)
            renamed = True
            _fsync(final.parent)
    except BaseException:
        if renamed:
            with contextlib.suppress(OSError):
                os.replace(final, staging.root)
        staging.discard()
        raise
    return catalog.get_by_id(ws.db, version_id)


def version_dir(ws: Workspace, version: DatasetVersion) -> Path:
    return ws.paths.lake / version.path


def data_files(ws: Workspace, version: DatasetVersion) -> list[Path]:
    root = version_dir(ws, version)
    return [root / rel for rel in read_manifest(root)["parts"]]


def reject_files(ws: Workspace, version: DatasetVersion) -> list[Path]:
    root = version_dir(ws, version)
    return [root / rel for rel in read_manifest(root)["rejects"]]


def scan(ws: Workspace, version: DatasetVersion) -> pl.LazyFrame:
    import polars as pl

    files = data_files(ws, version)
    if not files:
        return pl.LazyFrame(schema={k: _dtype(v) for k, v in version.schema.items()})
    # the key columns of a partitioned version are in its files: no hive inference from col=value folders
    return pl.scan_parquet([str(f) for f in files], hive_partitioning=False)


def read_page(ws: Workspace, version: DatasetVersion, offset: int, limit: int) -> pl.DataFrame:
    """Rows ``offset .. offset+limit`` of a version; reads only the row groups it needs (a lazy table's page)."""
    return scan(ws, version).slice(offset, limit).collect()


def _dtype(text: str) -> Any:
    from mlops_desktop.data.contract import parse_dtype

    try:
        return parse_dtype(text)
    except UsageError:
        import polars as pl

        return pl.String


def open_dataset(ws: Workspace, ref: str, kind: str = "polars", *, run: str | None = None,
                 context: str = "input") -> Any:
    """Read a dataset version ("name" = latest, "name@3") as a polars DataFrame, LazyFrame ("lazy") or pandas.

    The read is recorded as an input of ``run`` (a run uuid) or, without one, of the run started in this process
    with ``mlops_desktop.tracking.start_run`` if any, so that lineage works both ways.
    """
    version = catalog.resolve(ws.db, ref)
    if kind not in ("polars", "lazy", "pandas"):
        raise UsageError(f"unknown kind {kind!r}", hint="use 'polars', 'lazy' or 'pandas'")
    if run is not None:
        ws.tracking.log_input(run, version.name, str(version.version), digest=version.content_hash, context=context)
    else:
        import sys

        client = sys.modules.get("mlops_desktop.tracking.client")  # only if the caller already tracks a run
        active = client.active_run() if client is not None else None
        if active is not None:
            active.log_input(version.name, version.version, digest=version.content_hash, context=context)
    lf = scan(ws, version)
    if kind == "lazy":
        return lf
    df = lf.collect()
    return df.to_pandas() if kind == "pandas" else df
