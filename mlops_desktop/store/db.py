"""SQLite connection management: WAL, foreign keys, busy timeout, nested transactions and plain-worded errors."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from mlops_desktop.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)

T = TypeVar("T")


def classify_sqlite_error(exc: BaseException, path: Path | str) -> StoreError | None:
    """Map an environment failure (locked, full, read-only, corrupt) to a StoreError; None for everything else."""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        if "locked" in text or "busy" in text:
            return StoreLockedError(f"the workspace database {path} stayed locked by another process",
                                    hint="another program holds a long write transaction; retry shortly")
        if "disk is full" in text or "database or disk is full" in text:
            return StoreFullError(f"no space left for the workspace database {path}",
                                  hint="free disk space; everything stored before this point is intact")
        if "readonly" in text or "read-only" in text:
            return StoreReadOnlyError(f"the workspace database {path} is read-only",
                                      hint="check the permissions of the workspace directory and file")
        if "unable to open" in text:
            return StoreReadOnlyError(f"cannot open the workspace database {path}",
                                      hint="check that the directory exists and is writable")
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreCorruptError(f"the workspace database {path} is damaged or not a SQLite database",
                                     hint="restore it from a backup, or move it aside to start a new workspace")
        if "disk i/o error" in text:
            return StoreFullError(f"disk I/O error on the workspace database {path}",
                                  hint="the disk may be full or failing")
    if isinstance(exc, OSError):
        import errno

        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return StoreFullError(f"no space left while writing the workspace ({path})")
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return StoreReadOnlyError(f"the workspace {path} is not writable: {exc.strerror}")
    return None


def is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class Database:
    """One SQLite file. Each thread gets its own connection; ``transaction()`` nests with savepoints.

    Writes use BEGIN IMMEDIATE so that a writer waits for the lock up front (busy_timeout) instead of failing
    on upgrade; ``write()`` additionally retries whole transactions on SQLITE_BUSY with jittered backoff, so
    "database is locked" never reaches a caller while the lock is only contended.
    """

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 30_000, readonly: bool = False) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.readonly = readonly
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Called after any rollback (or rollback to a savepoint): caches of ids read inside the transaction
        # (run ids, metric key ids) may name rows that no longer exist.
        self.rollback_listeners: list[Callable[[], None]] = []

    # -- connections -------------------------------------------------------------------------------------------
    def connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if self.readonly:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False, timeout=self.busy_timeout_ms / 1000)
            else:
                conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False,
                                       timeout=self.busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys=ON")
            if not self.readonly:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-32000")
            conn.execute("PRAGMA temp_store=MEMORY")
            # Reading the schema proves the file is a database (a corrupt file fails here, not later).
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except (sqlite3.Error, OSError) as exc:
            if conn is not None:
                conn.close()
            raise self._wrap(exc) from None
        self._local.conn = conn
        self._local.depth = 0
        with self._lock:
            self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def _wrap(self, exc: BaseException) -> BaseException:
        mapped = classify_sqlite_error(exc, self.path)
        return mapped if mapped is not None else exc

    # -- queries -----------------------------------------------------------------------------------------------
    def execute(self, sql: str, params: tuple | dict = ()) -> sqlite3.Cursor:
        try:
            return self.connect().execute(sql, params)
        except sqlite3.Error as exc:
            raise self._wrap(exc) from None

    def query(self, sql: str, params: tuple | dict = ()) -> list[tuple]:
        try:
            return self.connect().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._wrap(exc) from None

    @contextlib.contextmanager
    def transaction(self, *, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction; nested calls become savepoints. Environment errors surface as StoreError."""
        conn = self.connect()
        depth = self._local.depth
        name = f"sp{depth}"
        try:
            if depth == 0:
                conn.execute("BEGIN IMMEDIATE" if immediate and not self.readonly else "BEGIN")
            else:
                conn.execute(f"SAVEPOINT {name}")
        except sqlite3.Error as exc:
            raise self._wrap(exc) from None
        self._local.depth = depth + 1
        try:
            yield conn
        except BaseException as exc:
            self._local.depth = depth
            with contextlib.suppress(sqlite3.Error):
                if depth == 0:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
            for listener in self.rollback_listeners:
                listener()
            if isinstance(exc, sqlite3.Error | OSError):
                mapped = classify_sqlite_error(exc, self.path)
                if mapped is not None:
                    raise mapped from None
            raise
        else:
            self._local.depth = depth
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE {name}")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise self._wrap(exc) from None

    def write(self, fn: Callable[[sqlite3.Connection], T], *, attempts: int = 200) -> T:
        """Run ``fn(conn)`` in one write transaction, retrying the whole transaction while the DB is busy."""
        delay = 0.001
        for attempt in range(attempts):
            try:
                with self.transaction() as conn:
                    return fn(conn)
            except StoreLockedError:
                if attempt == attempts - 1:
                    raise
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or attempt == attempts - 1:
                    raise
            time.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not crypto
            delay = min(delay * 2, 0.25)
        raise AssertionError("unreachable")
