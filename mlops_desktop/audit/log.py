"""Append, read and verify the hash-chained audit log (table `audit_events`, migration 0004_audit)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_desktop.errors import UsageError

GENESIS = "0" * 64  # the prev_hash of the first event
_COLUMNS = "id, ts, actor, kind, subject, from_value, to_value, reason, details, prev_hash, hash"


@dataclass(frozen=True)
class AuditEvent:
    id: int
    ts: float
    actor: str
    kind: str
    subject: str
    from_value: str | None
    to_value: str | None
    reason: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def current_actor() -> str:
    """The OS user (the person at the keyboard, or the service account of a job)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(event_id: int, ts: float, actor: str, kind: str, subject: str, from_value: str | None,
               to_value: str | None, reason: str, details_json: str, prev_hash: str) -> str:
    """sha256 over every field and the previous hash; `details_json` as stored (canonical JSON)."""
    body = _canonical([event_id, repr(float(ts)), actor, kind, subject, from_value, to_value, reason, details_json,
                       prev_hash])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, kind: str, subject: str, *, from_value: Any = None, to_value: Any = None,
           reason: str = "", details: Mapping[str, Any] | None = None, actor: str | None = None,
           ts: float | None = None) -> AuditEvent:
    """Append one event inside the caller's (write) transaction; the chain's head is read under that lock."""
    if not kind or not subject:
        raise UsageError("an audit event needs a kind and a subject")
    if not conn.in_transaction:
        raise RuntimeError("audit.append must run inside the transaction that makes the change")
    actor = actor or current_actor()
    ts = time.time() if ts is None else float(ts)
    details_json = _canonical(dict(details or {}))
    frm = None if from_value is None else str(from_value)
    to = None if to_value is None else str(to_value)
    head = conn.execute("SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1").fetchone()
    prev = head[1] if head else GENESIS
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'").fetchone()
    event_id = max(int(head[0]) if head else 0, int(seq[0]) if seq else 0) + 1
    digest = event_hash(event_id, ts, actor, kind, subject, frm, to, reason, details_json, prev)
    conn.execute(f"INSERT INTO audit_events({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                 (event_id, ts, actor, kind, subject, frm, to, reason, details_json, prev, digest))
    return AuditEvent(event_id, ts, actor, kind, subject, frm, to, reason, json.loads(details_json), prev, digest)


def _event(row: tuple) -> AuditEvent:
    try:
        details = json.loads(row[8]) if row[8] else {}
    except ValueError:
        details = {"unreadable": row[8]}
    return AuditEvent(int(row[0]), float(row[1]), row[2], row[3], row[4], row[5], row[6], row[7] or "",
                      details if isinstance(details, dict) else {"value": details}, row[9], row[10])


def events(db: Any, *, subject: str | None = None, subject_prefix: str | None = None, kind: str | None = None,
           kind_prefix: str | None = None, since: float | None = None, until: float | None = None,
           limit: int | None = None, newest_first: bool = False) -> list[AuditEvent]:
    """Events matching every filter given, in log order (oldest first unless `newest_first`)."""
    where: list[str] = []
    params: list[Any] = []
    if subject is not None:
        where.append("subject = ?")
        params.append(subject)
    if subject_prefix is not None:
        where.append("substr(subject, 1, ?) = ?")
        params += [len(subject_prefix), subject_prefix]
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if kind_prefix is not None:
        where.append("substr(kind, 1, ?) = ?")
        params += [len(kind_prefix), kind_prefix]
    if since is not None:
        where.append("ts >= ?")
        params.append(since)
    if until is not None:
        where.append("ts <= ?")
        params.append(until)
    sql = f"SELECT {_COLUMNS} FROM audit_events" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [_event(r) for r in db.query(sql, tuple(params))]


@dataclass
class VerifyReport:
    """What `verify` found: ok, how many events it checked, the chain's head, and each problem in words."""

    events: int = 0
    head: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "head": self.head, "problems": self.problems}


def verify(db: Any, *, max_problems: int = 50) -> VerifyReport:
    """Re-compute every event's hash and the links between them.

    An edited row fails its own hash; a deleted row leaves a gap in the ids and a broken link; a deleted last row
    leaves sqlite_sequence ahead of the last id. (Someone who rewrites the whole chain from the first changed row
    on, and the sequence too, is caught only by comparing the head with a copy kept elsewhere: `audit verify`
    prints it.)
    """
    report = VerifyReport()
    prev_hash, prev_id = GENESIS, 0
    conn = db.connect()
    for row in conn.execute(f"SELECT {_COLUMNS} FROM audit_events ORDER BY id"):
        event_id, ts, actor, kind, subject, frm, to, reason, details_json, stored_prev, stored_hash = row
        report.events += 1
        if event_id != prev_id + 1:
            missing = f"{prev_id + 1}" if event_id == prev_id + 2 else f"{prev_id + 1}-{event_id - 1}"
            report.problems.append(f"event(s) {missing} are missing: deleted from the log")
        if stored_prev != prev_hash:
            report.problems.append(f"event {event_id}: its link to the previous event is broken "
                                   "(an event before it was deleted, inserted or changed)")
        try:
            expected = event_hash(int(event_id), float(ts), actor, kind, subject, frm, to, reason or "",
                                  details_json, stored_prev)
        except (TypeError, ValueError):
            expected = ""
        if expected != stored_hash:
            report.problems.append(f"event {event_id} ({kind} {subject}) was changed after it was written: "
                                   "its content no longer matches its hash")
        prev_hash, prev_id = stored_hash, int(event_id)
        if len(report.problems) >= max_problems:
            report.problems.append("(stopped after this many problems)")
            break
    report.head = prev_hash
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_events'").fetchone()
    if seq and int(seq[0]) > prev_id and len(report.problems) < max_problems:
        gone = f"{prev_id + 1}" if int(seq[0]) == prev_id + 1 else f"{prev_id + 1}-{int(seq[0])}"
        report.problems.append(f"event(s) {gone} are missing: the last event(s) were deleted from the log")
    return report
