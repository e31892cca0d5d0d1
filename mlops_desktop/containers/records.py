"""Image records: what was built for a model version (tag, image id, size, build time, smoke figures) and where it
was pushed (digest); rows of 0009_containers, read back as ImageRecord entities. Builds and pushes are audited."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_desktop import audit
from mlops_desktop.errors import NotFoundError


@dataclass(frozen=True)
class ImageRecord:
    """One built image. `digest` is `repo@sha256:...` once pushed (else ""), `pushed_to` that registry."""

    model: str
    version: int | None
    tag: str                      # repo:tag on the engine that built it
    image_id: str                 # sha256:...
    digest: str
    size_bytes: int
    build_seconds: float
    base: str
    created_at: float
    smoke: dict[str, Any] | None
    pushed_to: str
    kind: str = "model"           # model | router
    bundle_hash: str = ""
    engine: str = ""
    base_id: str = ""
    deps_key: str = ""
    steps: int = 0
    cached_steps: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    pushes: tuple[dict[str, Any], ...] = ()
    id: int = 0

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}" if self.version is not None else self.model

    @property
    def pull_reference(self) -> str:
        """What an orchestrator pulls: the pushed digest when there is one, else the local tag."""
        return self.digest or self.tag

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pushes"] = [dict(p) for p in self.pushes]
        out["ref"] = self.ref
        return out


_COLUMNS = ("id, version_id, model, version, bundle_hash, kind, tag, engine, image_id, base, base_id, deps_key, "
            "size_bytes, build_seconds, steps, cached_steps, options, smoke, created_by, created_at")


def _record(conn: sqlite3.Connection, row: tuple) -> ImageRecord:
    (rid, _vid, model, version, bundle_hash, kind, tag, engine, image_id, base, base_id, deps_key, size, seconds,
     steps, cached, options, smoke, _by, created) = row
    pushes = tuple({"registry": r, "reference": ref, "digest": d, "pushed_by": by, "pushed_at": at}
                   for r, ref, d, by, at in conn.execute(
                       "SELECT registry, reference, digest, pushed_by, pushed_at FROM model_image_pushes "
                       "WHERE image = ? ORDER BY pushed_at DESC", (rid,)))
    last = pushes[0] if pushes else None
    return ImageRecord(model=model, version=version, tag=tag, image_id=image_id,
                       digest=last["digest"] if last else "", size_bytes=int(size), build_seconds=float(seconds),
                       base=base, created_at=float(created), smoke=json.loads(smoke) if smoke else None,
                       pushed_to=last["registry"] if last else "", kind=kind, bundle_hash=bundle_hash,
                       engine=engine, base_id=base_id, deps_key=deps_key, steps=int(steps),
                       cached_steps=int(cached), options=json.loads(options or "{}"), pushes=pushes, id=int(rid))


def save_build(db: Any, *, version_id: int | None, model: str, version: int | None, bundle_hash: str, kind: str,
               tag: str, engine: str, image_id: str, base: str, base_id: str, deps_key: str, size_bytes: int,
               build_seconds: float, steps: int, cached_steps: int, options: dict[str, Any]) -> ImageRecord:
    """Record a finished build (a rebuilt tag replaces its row, and its pushes: they were of the old image)."""
    now = time.time()
    actor = audit.current_actor()
    with db.transaction() as conn:
        conn.execute("DELETE FROM model_images WHERE tag = ? AND engine = ?", (tag, engine))
        cur = conn.execute(
            f"INSERT INTO model_images({_COLUMNS.replace('id, ', '', 1)}) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (version_id, model, version, bundle_hash, kind, tag, engine, image_id, base, base_id, deps_key,
             int(size_bytes), float(build_seconds), int(steps), int(cached_steps),
             json.dumps(options, sort_keys=True), None, actor, now))
        audit.append(conn, "image.built", _subject(model, version, kind), to_value=tag, actor=actor, ts=now,
                     details={"image_id": image_id, "size_bytes": int(size_bytes), "base": base,
                              "build_seconds": round(float(build_seconds), 3), "engine": engine})
        row = conn.execute(f"SELECT {_COLUMNS} FROM model_images WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _record(conn, row)


def save_smoke(db: Any, record: ImageRecord, smoke: dict[str, Any]) -> ImageRecord:
    with db.transaction() as conn:
        conn.execute("UPDATE model_images SET smoke = ? WHERE id = ?", (json.dumps(smoke, sort_keys=True), record.id))
        audit.append(conn, "image.smoke", _subject(record.model, record.version, record.kind), to_value=record.tag,
                     details={"passed": bool(smoke.get("passed")), "p50_ms": smoke.get("p50_ms"),
                              "p99_ms": smoke.get("p99_ms"), "rows": smoke.get("rows")})
        return _record(conn, conn.execute(f"SELECT {_COLUMNS} FROM model_images WHERE id = ?",
                                          (record.id,)).fetchone())


def save_push(db: Any, record: ImageRecord, *, registry: str, reference: str, digest: str) -> ImageRecord:
    now = time.time()
    actor = audit.current_actor()
    with db.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO model_image_pushes(image, registry, reference, digest, pushed_by, "
                     "pushed_at) VALUES (?,?,?,?,?,?)", (record.id, registry, reference, digest, actor, now))
        audit.append(conn, "image.pushed", _subject(record.model, record.version, record.kind), to_value=digest,
                     actor=actor, ts=now, details={"registry": registry, "reference": reference,
                                                   "image_id": record.image_id})
        return _record(conn, conn.execute(f"SELECT {_COLUMNS} FROM model_images WHERE id = ?",
                                          (record.id,)).fetchone())


def _subject(model: str, version: int | None, kind: str) -> str:
    if kind == "router":
        return "image:router"
    return f"model:{model}/{version}"


def list_images(db: Any, *, model: str | None = None, version: int | None = None) -> list[ImageRecord]:
    where: list[str] = []
    params: list[Any] = []
    if model is not None:
        where.append("model = ?")
        params.append(model)
    if version is not None:
        where.append("version = ?")
        params.append(version)
    sql = f"SELECT {_COLUMNS} FROM model_images" + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY created_at DESC, id DESC"
    conn = db.connect()
    return [_record(conn, row) for row in conn.execute(sql, params).fetchall()]


def find_image(db: Any, text: str) -> ImageRecord:
    """By tag, registry reference, digest (`repo@sha256:...` or `sha256:...`) or image id (prefix of 12+)."""
    conn = db.connect()
    needle = text.strip()
    row = conn.execute(f"SELECT {_COLUMNS} FROM model_images WHERE tag = ? ORDER BY created_at DESC LIMIT 1",
                       (needle,)).fetchone()
    if row is None:
        hit = conn.execute("SELECT image FROM model_image_pushes WHERE reference = ? OR digest = ? "
                           "OR digest LIKE ? ORDER BY pushed_at DESC LIMIT 1",
                           (needle, needle, f"%@{needle}" if needle.startswith("sha256:") else "\0")).fetchone()
        if hit is not None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM model_images WHERE id = ?", (hit[0],)).fetchone()
    if row is None and len(needle.removeprefix("sha256:")) >= 12:
        bare = needle.removeprefix("sha256:")
        row = conn.execute(f"SELECT {_COLUMNS} FROM model_images WHERE image_id LIKE ? "
                           "ORDER BY created_at DESC LIMIT 1", (f"sha256:{bare}%",)).fetchone()
    if row is None:
        raise NotFoundError(f"no image {text!r} was built in this workspace",
                            hint="`mlops-desktop images list` shows the images built here")
    return _record(conn, row)
