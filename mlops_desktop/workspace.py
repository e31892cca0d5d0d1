"""The Workspace: one directory holding the database, artifacts and data lake; created once and passed around."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_desktop.errors import StoreReadOnlyError
from mlops_desktop.paths import WorkspacePaths, resolve_home
from mlops_desktop.schema import MIGRATIONS
from mlops_desktop.settings import Settings
from mlops_desktop.store.db import Database, classify_sqlite_error
from mlops_desktop.store.migrations import check_not_newer, migrate

if TYPE_CHECKING:
    from mlops_desktop.tracking.sqlite_store import SqliteTrackingStore


class Workspace:
    """Paths, settings and the database of one workspace. Open it once at start-up and hand it to whoever needs it."""

    def __init__(self, root: Path, settings: Settings, db: Database) -> None:
        self.root = root
        self.paths = WorkspacePaths(root)
        self.settings = settings
        self.db = db
        self._tracking: SqliteTrackingStore | None = None

    @classmethod
    def open(cls, home: str | Path | None = None, *, create: bool = True, readonly: bool = False) -> Workspace:
        root = resolve_home(home)
        paths = WorkspacePaths(root)
        if not root.exists():
            if not create:
                from mlops_desktop.errors import NotFoundError

                raise NotFoundError(f"no workspace at {root}")
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise classify_sqlite_error(exc, root) or StoreReadOnlyError(
                    f"cannot create the workspace {root}: {exc.strerror}") from None
        settings = Settings.load(paths.settings)
        if not readonly and not os.access(root, os.W_OK):
            raise StoreReadOnlyError(f"the workspace {root} is not writable",
                                     hint="fix its permissions, or open it read-only")
        db = Database(paths.db, busy_timeout_ms=settings.busy_timeout_ms, readonly=readonly)
        conn = db.connect()
        if readonly:
            check_not_newer(conn, str(paths.db), MIGRATIONS)  # read what we understand, never a newer layout
        else:
            migrate(conn, str(paths.db), MIGRATIONS)
            if not paths.settings.exists():
                try:
                    settings.save(paths.settings)
                except OSError as exc:
                    raise classify_sqlite_error(exc, paths.settings) or exc from None
        return cls(root, settings, db)

    @property
    def tracking(self) -> SqliteTrackingStore:  # imported lazily to keep start-up light
        if self._tracking is None:
            from mlops_desktop.tracking.sqlite_store import SqliteTrackingStore

            self._tracking = SqliteTrackingStore(self.db, self.paths)
        return self._tracking

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
