"""Named, recorded, transactional schema migrations for the workspace database.

Each capability owns its migrations in its own module (``mlops_desktop/<capability>/schema.py``); the workspace
composes them in release order (``mlops_desktop/schema.py``), so this module knows no capability above it.
A migration is never edited after release: add a new one.
The ``schema_migrations`` table records each applied migration by name; ``PRAGMA user_version`` holds their count.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlops_desktop.errors import SchemaTooNewError, StoreCorruptError


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str = ""
    fn: Callable[[sqlite3.Connection], None] | None = None

    def apply(self, conn: sqlite3.Connection) -> None:
        if self.sql:
            for statement in split_statements(self.sql):
                conn.execute(statement)
        if self.fn is not None:
            self.fn(conn)


def split_statements(sql: str) -> list[str]:
    """Split a migration script into statements (executescript() would commit our transaction)."""
    statements, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def migrate(conn: sqlite3.Connection, path: str, migrations: list[Migration]) -> int:
    """Apply, in release order, every migration not yet recorded by name; returns how many were applied.

    Migrations are matched by name, not by position, so a database that met them in another order (a capability
    that shipped later) is still brought up to date. A database that recorded a migration this version does not
    know was written by a newer version and is refused.
    """
    version, applied = check_not_newer(conn, path, migrations)
    if len(applied) == len(migrations) and version == len(migrations):
        return 0
    count = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                     "id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, applied_at REAL NOT NULL)")
        done = set(_applied_names(conn))
        for migration in migrations:
            if migration.name in done:
                continue
            migration.apply(conn)
            conn.execute("INSERT INTO schema_migrations(name, applied_at) VALUES (?, ?)",
                         (migration.name, time.time()))
            count += 1
        conn.execute(f"PRAGMA user_version={len(done) + count}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return count


def check_not_newer(conn: sqlite3.Connection, path: str, migrations: list[Migration]) -> tuple[int, list[str]]:
    """(user_version, applied names); raises if a newer MLOps Desktop wrote the database (or it is not one)."""
    known = {m.name for m in migrations}
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        applied = _applied_names(conn)
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(f"the workspace database {path} is damaged or not a SQLite database ({exc})") from None
    unknown = [n for n in applied if n not in known]
    if unknown or version > len(migrations):
        raise SchemaTooNewError(
            f"the workspace database {path} was written by a newer version of MLOps Desktop "
            f"(schema {version}, this version knows {len(migrations)}"
            + (f"; unknown migrations: {', '.join(unknown[:3])}" if unknown else "") + ")",
            hint="upgrade MLOps Desktop, or open another workspace with --home")
    return version, applied


def _applied_names(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").fetchone()
    if not exists:
        return []
    return [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY id")]


def schema_snapshot(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Normalised (type, name, sql) of every schema object, for comparing databases."""
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                        "ORDER BY type, name").fetchall()
    return [(t, n, " ".join((s or "").split())) for t, n, s in rows]
