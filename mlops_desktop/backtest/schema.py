"""The backtest capability's tables, as named migrations (composed by mlops_desktop/schema.py).

A back-test's results live in runs (a parent, a child per window, metrics as series); these tables index them:
which dataset version and spec, which child run is which window, and the window bounds in the column's values.
"""

from __future__ import annotations

from mlops_desktop.store.migrations import Migration

BACKTEST_V1 = """
CREATE TABLE backtests (
    id INTEGER PRIMARY KEY,
    parent_run TEXT NOT NULL,
    dataset TEXT NOT NULL,
    dataset_version TEXT NOT NULL,
    time_col TEXT NOT NULL,
    task TEXT NOT NULL,
    target TEXT NOT NULL,
    labels TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'killed')),
    error TEXT NOT NULL DEFAULT '',
    aggregate TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX backtests_parent ON backtests(parent_run);
CREATE TABLE backtest_windows (
    backtest_id INTEGER NOT NULL REFERENCES backtests(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    child_run TEXT NOT NULL,
    train_start TEXT,
    train_end TEXT,
    test_start TEXT NOT NULL,
    test_end TEXT NOT NULL,
    rows INTEGER NOT NULL,
    train_rows INTEGER,
    ragged INTEGER NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (backtest_id, idx)
) WITHOUT ROWID;
"""

MIGRATIONS: list[Migration] = [Migration("0013_backtest", BACKTEST_V1)]
