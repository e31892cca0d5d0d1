"""The lake catalog: dataset versions as records in the workspace database, resolved by "name" or "name@version"."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_desktop.errors import NotFoundError, UsageError

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def check_name(name: str) -> str:
    """Dataset names double as SQL table names, so they are plain identifiers."""
    if not NAME_RE.match(name or ""):
        raise UsageError(f"invalid dataset name {name!r}",
                         hint="use letters, digits and underscores, starting with a letter (it is a SQL table name)")
    return name


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset, as the catalog records it."""

    id: int
    name: str
    version: int
    path: str
    schema: dict[str, str]
    row_count: int
    bytes: int
    content_hash: str
    source: dict[str, Any]
    mode: str
    rows_in: int
    rows_rejected: int
    drift: list[str]
    producer_step: str | None
    producer_fingerprint: str | None
    created_at: float
    parents: list[str] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ref": self.ref}


@dataclass(frozen=True)
class NewVersion:
    """What an ingestion or a pipeline step hands to ``commit_version`` (the catalog assigns the number)."""

    name: str
    path: str
    schema: dict[str, str]
    row_count: int
    bytes: int
    content_hash: str
    source: dict[str, Any]
    mode: str
    rows_in: int
    rows_rejected: int
    drift: list[str] = field(default_factory=list)
    parent_ids: list[int] = field(default_factory=list)
    producer_step: str | None = None
    producer_fingerprint: str | None = None
    expect_base_id: int | None = None  # append: the version the new rows were added to must still be the latest


_COLUMNS = ("v.id, d.name, v.version, v.path, v.schema_json, v.row_count, v.bytes, v.content_hash, v.source_json, "
            "v.mode, v.rows_in, v.rows_rejected, v.drift_json, v.producer_step, v.producer_fingerprint, v.created_at")
_FROM = "FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id"


def _row(row: tuple, parents: list[str] | None = None) -> DatasetVersion:
    return DatasetVersion(id=row[0], name=row[1], version=row[2], path=row[3], schema=json.loads(row[4]),
                          row_count=row[5], bytes=row[6], content_hash=row[7], source=json.loads(row[8]), mode=row[9],
                          rows_in=row[10], rows_rejected=row[11], drift=json.loads(row[12]), producer_step=row[13],
                          producer_fingerprint=row[14], created_at=row[15], parents=parents or [])


def parse_ref(ref: str) -> tuple[str, int | None]:
    """"name" -> (name, None) meaning latest; "name@3" -> (name, 3)."""
    name, sep, version = ref.partition("@")
    check_name(name)
    if not sep:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise UsageError(f"invalid dataset version in {ref!r}", hint="write NAME@N with N a version number (1, 2, ...)")
    return name, int(version)


def resolve(db: Any, ref: str) -> DatasetVersion:
    """The version named by ``ref`` ("name" = latest); NotFoundError says what exists instead."""
    name, version = parse_ref(ref)
    if version is None:
        rows = db.query(f"SELECT {_COLUMNS} {_FROM} WHERE d.name = ? ORDER BY v.version DESC LIMIT 1", (name,))
    else:
        rows = db.query(f"SELECT {_COLUMNS} {_FROM} WHERE d.name = ? AND v.version = ?", (name, version))
    if not rows:
        known = [r[0] for r in db.query("SELECT version FROM dataset_versions v JOIN datasets d "
                                        "ON d.id = v.dataset_id WHERE d.name = ? ORDER BY version", (name,))]
        if known:
            raise NotFoundError(f"dataset {name} has no version {version}; versions: "
                                + ", ".join(str(k) for k in known))
        raise NotFoundError(f"no dataset named {name!r}", hint="see `mlops-desktop data list`")
    return _row(rows[0], parents_of(db, rows[0][0]))


def latest(db: Any, name: str) -> DatasetVersion | None:
    try:
        return resolve(db, name)
    except NotFoundError:
        return None


def get_by_id(db: Any, version_id: int) -> DatasetVersion:
    rows = db.query(f"SELECT {_COLUMNS} {_FROM} WHERE v.id = ?", (version_id,))
    if not rows:
        raise NotFoundError(f"no dataset version with id {version_id}")
    return _row(rows[0], parents_of(db, version_id))


def parents_of(db: Any, version_id: int) -> list[str]:
    rows = db.query("SELECT d.name, v.version FROM dataset_lineage l JOIN dataset_versions v ON v.id = l.parent_id "
                    "JOIN datasets d ON d.id = v.dataset_id WHERE l.child_id = ? ORDER BY d.name, v.version",
                    (version_id,))
    return [f"{n}@{v}" for n, v in rows]


def children_of(db: Any, version_id: int) -> list[str]:
    rows = db.query("SELECT d.name, v.version FROM dataset_lineage l JOIN dataset_versions v ON v.id = l.child_id "
                    "JOIN datasets d ON d.id = v.dataset_id WHERE l.parent_id = ? ORDER BY d.name, v.version",
                    (version_id,))
    return [f"{n}@{v}" for n, v in rows]


def list_datasets(db: Any) -> list[DatasetVersion]:
    """The latest version of every dataset, by name."""
    rows = db.query(f"SELECT {_COLUMNS} {_FROM} WHERE v.version = (SELECT max(version) FROM dataset_versions "
                    "WHERE dataset_id = d.id) ORDER BY d.name")
    return [_row(r) for r in rows]


def list_versions(db: Any, name: str) -> list[DatasetVersion]:
    check_name(name)
    rows = db.query(f"SELECT {_COLUMNS} {_FROM} WHERE d.name = ? ORDER BY v.version", (name,))
    if not rows:
        raise NotFoundError(f"no dataset named {name!r}", hint="see `mlops-desktop data list`")
    return [_row(r, parents_of(db, r[0])) for r in rows]


class ConcurrentChangeError(UsageError):
    """Another process added a version between reading the base and committing (append)."""


def insert_version(conn: sqlite3.Connection, new: NewVersion) -> tuple[int, int]:
    """Insert inside the caller's transaction; returns (version id, version number)."""
    now = time.time()
    conn.execute("INSERT OR IGNORE INTO datasets(name, created_at) VALUES (?, ?)", (new.name, now))
    dataset_id = conn.execute("SELECT id FROM datasets WHERE name = ?", (new.name,)).fetchone()[0]
    last = conn.execute("SELECT id, version FROM dataset_versions WHERE dataset_id = ? ORDER BY version DESC LIMIT 1",
                        (dataset_id,)).fetchone()
    if new.mode == "append" and (last[0] if last else None) != new.expect_base_id:
        raise ConcurrentChangeError(f"dataset {new.name} got a new version while appending; nothing was stored",
                                    hint="run the ingestion again: it appends to the new latest version")
    number = (last[1] if last else 0) + 1
    cur = conn.execute(
        "INSERT INTO dataset_versions(dataset_id, version, path, schema_json, row_count, bytes, content_hash, "
        "source_json, mode, rows_in, rows_rejected, drift_json, producer_step, producer_fingerprint, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (dataset_id, number, new.path, json.dumps(new.schema), new.row_count, new.bytes, new.content_hash,
         json.dumps(new.source, default=str), new.mode, new.rows_in, new.rows_rejected, json.dumps(new.drift),
         new.producer_step, new.producer_fingerprint, now))
    version_id = int(cur.lastrowid or 0)
    for parent in sorted(set(new.parent_ids)):
        conn.execute("INSERT INTO dataset_lineage(child_id, parent_id) VALUES (?, ?)", (version_id, parent))
    return version_id, number


def runs_that_read(db: Any, name: str) -> list[dict[str, Any]]:
    """Runs that logged this dataset as an input (the tracking store's run_inputs table)."""
    rows = db.query("SELECT r.uuid, r.name, i.version, i.context FROM run_inputs i JOIN runs r ON r.id = i.run_id "
                    "WHERE i.dataset = ? AND r.deleted_at IS NULL ORDER BY r.start_time", (name,))
    return [{"run": u, "run_name": n, "version": v, "context": c} for u, n, v, c in rows]


def get_profile(db: Any, version_id: int) -> dict[str, Any] | None:
    rows = db.query("SELECT profile_json FROM dataset_profiles WHERE version_id = ?", (version_id,))
    return json.loads(rows[0][0]) if rows else None


def put_profile(db: Any, version_id: int, profile: dict[str, Any]) -> None:
    text = json.dumps(profile, default=str)
    db.write(lambda conn: conn.execute(
        "INSERT OR REPLACE INTO dataset_profiles(version_id, profile_json, created_at) VALUES (?, ?, ?)",
        (version_id, text, time.time())))
