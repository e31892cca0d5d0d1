"""Promotion requests as stored (tables promotion_requests, promotion_checks, promotion_decisions,
promotion_notices): entities, reads, and the small writes every other module shares."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop import audit
from mlops_desktop.errors import NotFoundError

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

OPEN_STATES = ("pending", "running", "waiting", "review", "deploying")
DONE_STATES = ("failed", "approved", "rejected", "expired", "cancelled")
STATES = OPEN_STATES + DONE_STATES
_COLUMNS = ("id, model, version, policy, policy_json, state, trigger, champion_version, candidate_by, requested_by, "
            "created_at, updated_at, review_at, expires_at, decided_at, message, runner_pid, outcome_json")


@dataclass
class CheckState:
    position: int
    name: str
    kind: str
    state: str                # pending | running | waiting | passed | failed
    summary: str
    evidence: dict[str, Any]
    started_at: float | None
    finished_at: float | None
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Decision:
    id: int
    actor: str
    display_name: str
    decision: str             # approve | reject
    comment: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PromotionRequest:
    id: int
    model: str
    version: int
    policy: str
    policy_data: dict[str, Any]
    state: str
    trigger: str
    champion_version: int | None
    candidate_by: str
    requested_by: str
    created_at: float
    updated_at: float
    review_at: float | None
    expires_at: float | None
    decided_at: float | None
    message: str
    runner_pid: int | None
    outcome: dict[str, Any]
    checks: list[CheckState] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    @property
    def champion_ref(self) -> str | None:
        return None if self.champion_version is None else f"{self.model}/{self.champion_version}"

    @property
    def champion_alias(self) -> str:
        return str(self.policy_data.get("champion_alias", "champion"))

    @property
    def approvals_needed(self) -> int:
        return int(self.policy_data.get("approvals", 1))

    @property
    def approvals(self) -> list[Decision]:
        return [d for d in self.decisions if d.decision == "approve"]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out |= {"ref": self.ref, "champion_ref": self.champion_ref, "approvals_needed": self.approvals_needed,
                "approvals_given": len(self.approvals)}
        return out


def subject(request_id: int) -> str:
    return f"promotion:{request_id}"


def _request(row: tuple) -> PromotionRequest:
    return PromotionRequest(int(row[0]), row[1], int(row[2]), row[3], json.loads(row[4]), row[5], row[6],
                            None if row[7] is None else int(row[7]), row[8], row[9], row[10], row[11], row[12],
                            row[13], row[14], row[15] or "", row[16], json.loads(row[17] or "{}"))


def get(ws: Workspace, request_id: int | str) -> PromotionRequest:
    try:
        rid = int(str(request_id).lstrip("#"))
    except ValueError:
        raise NotFoundError(f"{request_id!r} is not a promotion request id (a number)") from None
    rows = ws.db.query(f"SELECT {_COLUMNS} FROM promotion_requests WHERE id = ?", (rid,))
    if not rows:
        raise NotFoundError(f"no promotion request {rid}", hint="see `mlops-desktop reviews list --all`")
    req = _request(rows[0])
    req.checks = [CheckState(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7], r[8]) for r in ws.db.query(
        "SELECT position, name, kind, state, summary, evidence_json, started_at, finished_at, attempts "
        "FROM promotion_checks WHERE request_id = ? ORDER BY position", (rid,))]
    req.decisions = [Decision(*r) for r in ws.db.query(
        "SELECT id, actor, display_name, decision, comment, ts FROM promotion_decisions WHERE request_id = ? "
        "ORDER BY id", (rid,))]
    return req


def list_requests(ws: Workspace, *, states: tuple[str, ...] | None = None, model: str | None = None,
                  limit: int = 200) -> list[PromotionRequest]:
    where, params = [], []
    if states:
        where.append(f"state IN ({','.join('?' * len(states))})")
        params += list(states)
    if model:
        where.append("model = ?")
        params.append(model)
    sql = f"SELECT {_COLUMNS} FROM promotion_requests" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY id DESC LIMIT ?"
    out = [_request(r) for r in ws.db.query(sql, (*params, int(limit)))]
    if out:
        ids = [r.id for r in out]
        counts: dict[int, list[Decision]] = {}
        for r in ws.db.query(f"SELECT request_id, id, actor, display_name, decision, comment, ts "
                             f"FROM promotion_decisions WHERE request_id IN ({','.join('?' * len(ids))}) ORDER BY id",
                             tuple(ids)):
            counts.setdefault(r[0], []).append(Decision(*r[1:]))
        for req in out:
            req.decisions = counts.get(req.id, [])
    return out


def set_state(conn: sqlite3.Connection, request_id: int, state: str, message: str, **fields: Any) -> None:
    cols = ", ".join(f"{k} = ?" for k in fields)
    conn.execute(f"UPDATE promotion_requests SET state = ?, message = ?, updated_at = ?{', ' + cols if cols else ''} "
                 "WHERE id = ?", (state, message, time.time(), *fields.values(), request_id))


def notify(conn: sqlite3.Connection, request_id: int, level: str, message: str) -> None:
    conn.execute("INSERT INTO promotion_notices(request_id, ts, level, message) VALUES (?,?,?,?)",
                 (request_id, time.time(), level, message))


@dataclass
class Notice:
    id: int
    request_id: int
    ts: float
    level: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unread_notices(ws: Workspace, *, mark_read: bool = False) -> list[Notice]:
    rows = ws.db.query("SELECT id, request_id, ts, level, message FROM promotion_notices WHERE read_at IS NULL "
                       "ORDER BY id")
    if rows and mark_read:
        last = rows[-1][0]
        ws.db.write(lambda c: c.execute("UPDATE promotion_notices SET read_at = ? WHERE read_at IS NULL AND id <= ?",
                                        (time.time(), last)))
    return [Notice(*r) for r in rows]


def record(conn: sqlite3.Connection, kind: str, request_id: int, *, reason: str = "", actor: str | None = None,
           from_value: Any = None, to_value: Any = None, details: dict[str, Any] | None = None) -> None:
    audit.append(conn, kind, subject(request_id), reason=reason, actor=actor, from_value=from_value,
                 to_value=to_value, details=details)
