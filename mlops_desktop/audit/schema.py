"""Audit tables: one append-only, hash-chained event log that every state change of the registry and later parts
(deployments, reverts, promotions, approvals) writes to, in the same transaction as the change."""

from mlops_desktop.store.migrations import Migration

AUDIT_V1 = """
-- AUTOINCREMENT: sqlite_sequence keeps the highest id ever issued, so a deleted last row is noticed too.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    from_value TEXT,
    to_value TEXT,
    reason TEXT NOT NULL DEFAULT '',
    details TEXT NOT NULL DEFAULT '{}',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_events_subject ON audit_events(subject, id);
CREATE INDEX audit_events_kind ON audit_events(kind, id);
CREATE INDEX audit_events_ts ON audit_events(ts);
-- Append-only for every ordinary writer; the hash chain shows edits made around these triggers.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: events cannot be changed'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: events cannot be deleted'); END;
"""

MIGRATIONS = [Migration("0004_audit", AUDIT_V1)]
