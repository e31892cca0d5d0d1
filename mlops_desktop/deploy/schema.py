"""The deploy capability's tables, as named migrations (composed by mlops_desktop/schema.py)."""

from __future__ import annotations

from mlops_desktop.store.migrations import Migration

DEPLOY_V1 = """
-- A place deployments run: a Docker engine (local), a Swarm manager, a Kubernetes context/namespace.
-- No credentials here: they stay in Docker's config / credential helpers / the kubeconfig.
CREATE TABLE deploy_targets (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('local', 'swarm', 'kubernetes')),
    address TEXT,
    context TEXT,
    namespace TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    last_check TEXT,
    checked_at REAL
);
-- One deployment: its current spec and router plan (JSON), the revision serving now, the state we last observed.
CREATE TABLE deployments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL REFERENCES deploy_targets(name) ON DELETE RESTRICT,
    spec TEXT NOT NULL,
    router TEXT,
    current_revision INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'progressing',
    reason TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    updated_at REAL NOT NULL
);
-- The append-only revision history: a row is never deleted (even with its deployment: deployment_name keeps the
-- history readable), and only its outcome, detail, alerting flag, finish time and rolled_back_to change after it
-- is written (triggers below).
CREATE TABLE deploy_revisions (
    id INTEGER PRIMARY KEY,
    deployment_id INTEGER REFERENCES deployments(id) ON DELETE SET NULL,
    deployment_name TEXT NOT NULL,
    number INTEGER NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    image TEXT NOT NULL,
    spec TEXT NOT NULL,
    router TEXT,
    actor TEXT NOT NULL,
    at REAL NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'healthy', 'failed', 'rolled_back', 'reverted', 'unknown')),
    detail TEXT NOT NULL DEFAULT '',
    alerting TEXT,
    finished_at REAL,
    rolled_back_to INTEGER,
    UNIQUE (deployment_id, number)
);
CREATE INDEX deploy_revisions_name ON deploy_revisions(deployment_name, number);
CREATE TRIGGER deploy_revisions_no_delete BEFORE DELETE ON deploy_revisions
BEGIN
    SELECT RAISE(ABORT, 'deploy_revisions is append-only');
END;
CREATE TRIGGER deploy_revisions_fixed BEFORE UPDATE OF deployment_name, number, action, model, version, image, spec,
    router, actor, at, reason ON deploy_revisions
BEGIN
    SELECT RAISE(ABORT, 'a deploy revision''s content cannot change');
END;
-- Rollout steps and engine events in words, per revision (the GUI's rollout view and `deploy status --events`).
CREATE TABLE deploy_events (
    id INTEGER PRIMARY KEY,
    deployment_name TEXT NOT NULL,
    revision INTEGER,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX deploy_events_name ON deploy_events(deployment_name, id);
"""

MIGRATIONS: list[Migration] = [Migration("0010_deploy", DEPLOY_V1)]
