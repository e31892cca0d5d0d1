"""The workspace database: SQLite connections, transactions, error mapping and how migrations are applied.

It imports no capability: the list of migrations is composed above it, in `mlops_desktop/schema.py`.
"""

from mlops_desktop.store.db import Database, classify_sqlite_error
from mlops_desktop.store.migrations import Migration

__all__ = ["Database", "classify_sqlite_error", "Migration"]
