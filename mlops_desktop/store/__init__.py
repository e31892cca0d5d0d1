"""The workspace database: SQLite connections, transactions, error mapping and migrations (shared by every capability)."""

from mlops_desktop.store.db import Database, classify_sqlite_error
from mlops_desktop.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migration

__all__ = ["Database", "classify_sqlite_error", "MIGRATIONS", "Migration", "SCHEMA_VERSION"]
