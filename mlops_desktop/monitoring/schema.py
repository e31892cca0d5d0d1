"""The monitoring capability's tables, as named migrations (composed by mlops_desktop/schema.py)."""

from __future__ import annotations

from mlops_desktop.store.migrations import Migration

MONITORING_V1 = """
-- One monitored series of a deployment: a name (requests_per_s, p99_latency, up, drift.share, ...) and its labels
-- (canonical JSON: target, role, version, arm; {} for the deployment as a whole).
CREATE TABLE monitor_series (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL,
    name TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    last_ts REAL,
    last_value REAL,
    UNIQUE (deployment, name, labels)
);
-- Points of a series packed in chunks (tracking/packing.py): ms timestamps delta+zlib, float64 values raw; NaN is
-- a "no data" point (the target did not answer), never a gap.
CREATE TABLE monitor_chunks (
    id INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES monitor_series(id) ON DELETE CASCADE,
    start_ts REAL NOT NULL,
    end_ts REAL NOT NULL,
    n INTEGER NOT NULL,
    ts BLOB NOT NULL,
    vals BLOB NOT NULL
);
CREATE INDEX monitor_chunks_series ON monitor_chunks(series_id, end_ts);
-- Alert rules (from a project's mlops.toml, the GUI or the CLI). deployment '*' applies to every deployment.
CREATE TABLE monitor_rules (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    deployment TEXT NOT NULL DEFAULT '*',
    expr TEXT NOT NULL,
    for_s REAL NOT NULL DEFAULT 0,
    keep_firing_for_s REAL NOT NULL DEFAULT 0,
    severity TEXT NOT NULL DEFAULT 'warning' CHECK (severity IN ('info', 'warning', 'critical')),
    labels TEXT NOT NULL DEFAULT '{}',
    summary TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL DEFAULT 'none' CHECK (action IN ('none', 'revert')),
    source TEXT NOT NULL DEFAULT 'cli',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at REAL NOT NULL
);
-- One alert: a rule's episode on a deployment, pending -> firing -> resolved (or pending -> normal: dropped).
CREATE TABLE monitor_alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    deployment TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'firing', 'resolved', 'inactive')),
    severity TEXT NOT NULL,
    value REAL,
    labels TEXT NOT NULL DEFAULT '{}',
    started_at REAL NOT NULL,
    fired_at REAL,
    resolved_at REAL,
    last_true_at REAL,
    acked_by TEXT,
    acked_at REAL,
    ack_note TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL DEFAULT ''
);
CREATE INDEX monitor_alerts_open ON monitor_alerts(deployment, rule, state);
-- Every state change, notification and action of an alert.
CREATE TABLE monitor_alert_events (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES monitor_alerts(id) ON DELETE CASCADE,
    at REAL NOT NULL,
    event TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX monitor_alert_events_alert ON monitor_alert_events(alert_id, at);
-- Silences: no notification and no automatic action for matching alerts until ends_at (glob patterns).
CREATE TABLE monitor_silences (
    id INTEGER PRIMARY KEY,
    deployment TEXT NOT NULL DEFAULT '*',
    rule TEXT NOT NULL DEFAULT '*',
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
);
-- The reference sketch of a model version's training data (monitoring/sketch.py), computed once from the exact
-- dataset version in the lake and kept (zlib-compressed JSON).
CREATE TABLE monitor_sketches (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    source TEXT NOT NULL,
    target TEXT,
    sketch BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (model, version)
);
"""

MIGRATIONS: list[Migration] = [Migration("0011_monitoring", MONITORING_V1)]
