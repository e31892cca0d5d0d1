"""Serving tables: managed local server processes (state survives an app restart) and their event log."""

from mlops_desktop.store.migrations import Migration

SERVING_V1 = """
-- One managed local model server: what it serves, where, and the process that does (pid + start ticks, so a
-- reused pid is never taken for it). `state` is what we last did or saw; `serve list` checks the process.
CREATE TABLE model_servers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    ref TEXT NOT NULL,
    version TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('starting', 'running', 'stopped', 'failed', 'lost')),
    pid INTEGER,
    pid_start INTEGER,
    argv TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    exit_code INTEGER,
    error TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    started_at REAL,
    stopped_at REAL
);
-- Every state change of a managed server: who, when, what, from which version to which.
CREATE TABLE model_server_events (
    id INTEGER PRIMARY KEY,
    server_id INTEGER NOT NULL REFERENCES model_servers(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX model_server_events_server ON model_server_events(server_id, at);
"""

MIGRATIONS = [Migration("0006_serving", SERVING_V1)]
