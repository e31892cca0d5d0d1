"""The promotion pipeline as a resumable job: `start` records a request and its checks; `run` drives the checks in
order, recording each outcome as it lands, so a killed or cancelled run resumes at the first check not passed.

A failed check stops the pipeline and notifies (a notice, and the audit log); a check that waits for live traffic
leaves the request `waiting` until the next `run`; when every check passed the request enters the review queue with
its expiry. `trigger(ws, policies)` starts requests for what a policy's trigger names (a new version, an alias).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from mlops_desktop import audit
from mlops_desktop.errors import Cancelled, MlopsError, NotFoundError, UsageError
from mlops_desktop.procs import pid_alive
from mlops_desktop.progress import Progress
from mlops_desktop.promotion import requests as rq
from mlops_desktop.promotion.checks.base import CheckContext, CheckResult
from mlops_desktop.promotion.policy import Policy, from_dict

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace


def _champion(ws: Workspace, model: str, alias: str) -> Any:
    from mlops_desktop import registry

    try:
        return registry.store(ws).resolve(f"{model}@{alias}")
    except NotFoundError:
        return None


def start(ws: Workspace, ref: str, policy: Policy, *, trigger: str = "manual",
          actor: str | None = None) -> rq.PromotionRequest:
    """Record a request for the candidate `ref` under `policy` (its checks pending); `run` drives it."""
    from mlops_desktop import registry

    candidate = registry.store(ws).resolve(ref)
    if candidate.name != policy.model:
        raise UsageError(f"policy {policy.name!r} is for model {policy.model!r}, not {candidate.name!r}")
    champion = _champion(ws, candidate.name, policy.champion_alias)
    if champion is not None and champion.version == candidate.version:
        raise UsageError(f"{candidate.ref} already is {candidate.name}@{policy.champion_alias}: nothing to promote")
    actor = actor or audit.current_actor()
    snapshot = policy.to_dict()

    def tx(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT id, state FROM promotion_requests WHERE model = ? AND version = ? AND policy = ? "
                           f"AND state IN ({','.join('?' * len(rq.OPEN_STATES))})",
                           (candidate.name, candidate.version, policy.name, *rq.OPEN_STATES)).fetchone()
        if row is not None:
            raise UsageError(f"{candidate.ref} already has an open promotion request ({row[0]}, {row[1]})",
                             hint=f"`mlops-desktop promote status {row[0]}`")
        now = time.time()
        rid = int(conn.execute(
            "INSERT INTO promotion_requests(model, version, policy, policy_json, state, trigger, champion_version, "
            "candidate_by, requested_by, created_at, updated_at, message) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (candidate.name, candidate.version, policy.name, json.dumps(snapshot), "pending", trigger,
             champion.version if champion is not None else None, candidate.created_by, actor, now, now,
             f"{len(policy.checks)} check(s) to run")).lastrowid or 0)
        conn.executemany("INSERT INTO promotion_checks(request_id, position, name, kind, state) VALUES (?,?,?,?,?)",
                         [(rid, i, c.name, c.kind, "pending") for i, c in enumerate(policy.checks)])
        rq.record(conn, "promotion.started", rid, actor=actor, to_value=candidate.ref,
                  reason=f"policy {policy.name}, trigger {trigger}",
                  details={"model": candidate.name, "version": candidate.version, "policy": policy.name,
                           "champion": champion.ref if champion is not None else None,
                           "checks": [c.name for c in policy.checks]})
        return rid

    return rq.get(ws, ws.db.write(tx))


def _claim(ws: Workspace, request_id: int) -> rq.PromotionRequest | None:
    """Take the request for this process; None when there is nothing to run (decided, in review)."""

    def tx(conn: sqlite3.Connection) -> bool:
        row = conn.execute("SELECT state, runner_pid FROM promotion_requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no promotion request {request_id}")
        state, pid = row
        if state == "running" and pid and pid != os.getpid() and pid_alive(int(pid)):
            raise UsageError(f"promotion request {request_id} is being run by process {pid}",
                             hint="wait for it, or stop that process; a dead runner is taken over")
        if state not in ("pending", "running", "waiting"):
            return False
        rq.set_state(conn, request_id, "running", "running the checks", runner_pid=os.getpid())
        return True

    return rq.get(ws, request_id) if ws.db.write(tx) else None


def _save_check(ws: Workspace, req: rq.PromotionRequest, position: int, name: str, result: CheckResult,
                actor: str) -> None:
    state = "waiting" if result.waiting else ("passed" if result.passed else "failed")

    def tx(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE promotion_checks SET state = ?, summary = ?, evidence_json = ?, finished_at = ? "
                     "WHERE request_id = ? AND position = ?",
                     (state, result.summary, json.dumps(_jsonable(result.evidence)),
                      None if result.waiting else time.time(), req.id, position))
        if result.waiting:
            rq.set_state(conn, req.id, "waiting", f"{name}: {result.summary}", runner_pid=None)
            return
        rq.record(conn, f"promotion.check.{state}", req.id, actor=actor, to_value=name, reason=result.summary[:500])
        if not result.passed:
            message = f"check {name} failed: {result.summary}"
            rq.set_state(conn, req.id, "failed", message, runner_pid=None, decided_at=time.time())
            rq.notify(conn, req.id, "error", f"{req.ref}: {message}")
            rq.record(conn, "promotion.failed", req.id, actor=actor, from_value="running", to_value="failed",
                      reason=message[:500])

    ws.db.write(tx)


def _mark(ws: Workspace, request_id: int, position: int, state: str, cancelled: str | None = None) -> None:
    """A check starts (`running`, one more attempt) or goes back to `pending` (cancelled: the request too)."""

    def tx(conn: sqlite3.Connection) -> None:
        if state == "running":
            conn.execute("UPDATE promotion_checks SET state = 'running', attempts = attempts + 1, started_at = ? "
                         "WHERE request_id = ? AND position = ?", (time.time(), request_id, position))
            return
        conn.execute("UPDATE promotion_checks SET state = ? WHERE request_id = ? AND position = ?",
                     (state, request_id, position))
        if cancelled:
            rq.set_state(conn, request_id, "pending", cancelled, runner_pid=None)

    ws.db.write(tx)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(o)))


def run(ws: Workspace, request_id: int, *, progress: Progress | None = None,
        actor: str | None = None) -> rq.PromotionRequest:
    """Run (or resume) the request's checks; returns the request as it stands afterwards."""
    from mlops_desktop import registry

    progress = progress or Progress()
    actor = actor or audit.current_actor()
    req = _claim(ws, request_id)
    if req is None:
        current = rq.get(ws, request_id)
        if current.state == "deploying":
            from mlops_desktop.promotion.reviews import finish_approval

            return finish_approval(ws, current, actor=actor)
        return current
    policy = from_dict(req.policy_data)
    store = registry.store(ws)
    candidate = store.get_version(req.model, req.version)
    champion = store.get_version(req.model, req.champion_version) if req.champion_version is not None else None
    workdir = ws.root / "promotion" / str(req.id)
    for i, state in enumerate(req.checks):
        if state.state == "passed":
            continue
        check = policy.checks[state.position]
        sub = progress.sub(i / max(len(req.checks), 1), (i + 1) / max(len(req.checks), 1))
        sub.update(0.0, f"{check.name}: running")
        _mark(ws, req.id, state.position, "running")
        scratch = workdir / f"{state.position}-{check.name}"
        scratch.mkdir(parents=True, exist_ok=True)
        ctx = CheckContext(ws, req.id, candidate, champion, req.champion_alias, req.created_at, scratch, sub,
                           state.evidence)
        try:
            result = check.run(ctx)
        except Cancelled:
            _mark(ws, req.id, state.position, "pending",
                  f"cancelled during {check.name}; `promote resume {req.id}` continues")
            raise
        except MlopsError as exc:
            result = CheckResult(False, f"could not run: {exc.message}", {"error": exc.message})
        except Exception as exc:
            _save_check(ws, req, state.position, check.name,
                        CheckResult(False, f"crashed: {type(exc).__name__}: {exc}", {"error": repr(exc)}), actor)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        _save_check(ws, req, state.position, check.name, result, actor)
        if result.waiting or not result.passed:
            return rq.get(ws, req.id)
    now = time.time()
    expires = now + float(policy.expires_s)

    def tx(conn: sqlite3.Connection) -> None:
        rq.set_state(conn, req.id, "review", f"every check passed; waiting for {policy.approvals} approval(s)",
                     runner_pid=None, review_at=now, expires_at=expires)
        rq.notify(conn, req.id, "info", f"{req.ref} passed its checks and waits for review")
        rq.record(conn, "promotion.review.opened", req.id, actor=actor, from_value="running", to_value="review",
                  reason=f"{len(req.checks)} check(s) passed", details={"expires_at": expires})

    ws.db.write(tx)
    progress.update(1.0, "in review")
    return rq.get(ws, req.id)


def cancel(ws: Workspace, request_id: int, *, reason: str, actor: str | None = None) -> rq.PromotionRequest:
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("cancelling a promotion request needs a reason", hint="pass --reason \"why\"")
    req = rq.get(ws, request_id)
    if req.state in rq.DONE_STATES or req.state == "deploying":
        raise UsageError(f"promotion request {req.id} is {req.state}; it cannot be cancelled")

    def tx(conn: sqlite3.Connection) -> None:
        rq.set_state(conn, req.id, "cancelled", f"cancelled: {reason}", runner_pid=None, decided_at=time.time())
        rq.record(conn, "promotion.cancelled", req.id, actor=actor, from_value=req.state, to_value="cancelled",
                  reason=reason)

    ws.db.write(tx)
    return rq.get(ws, req.id)


def trigger(ws: Workspace, policies: dict[str, Policy], *, actor: str | None = None) -> list[rq.PromotionRequest]:
    """Start a request for every candidate a policy's trigger names and that has none yet under that policy:
    `new-version` -> the model's latest version; `alias:NAME` -> the version the alias points at."""
    from mlops_desktop import registry

    store = registry.store(ws)
    started = []
    for policy in policies.values():
        if policy.trigger == "manual":
            continue
        try:
            ref = f"{policy.model}@{policy.trigger_alias}" if policy.trigger_alias else policy.model
            candidate = store.resolve(ref)
        except NotFoundError:
            continue
        champion = _champion(ws, policy.model, policy.champion_alias)
        if champion is not None and champion.version == candidate.version:
            continue
        seen = ws.db.query("SELECT 1 FROM promotion_requests WHERE model = ? AND version = ? AND policy = ?",
                           (candidate.name, candidate.version, policy.name))
        if seen:
            continue
        started.append(start(ws, candidate.ref, policy, trigger=policy.trigger, actor=actor))
    return started
