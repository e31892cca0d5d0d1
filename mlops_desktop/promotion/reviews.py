"""The review queue: requests whose checks passed wait for people. Approve or reject with a comment; the policy
says how many approvals it takes, whether the person who registered the candidate may approve it, and when an
undecided request expires. The last approval moves the alias and updates what serves it (managed servers serving
MODEL@ALIAS, and deployments through the deploy service where this build has one); a rejection records why and
changes nothing else. Every step is in the audit log."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import TYPE_CHECKING, Any

from mlops_desktop import audit
from mlops_desktop.errors import MlopsError, UsageError
from mlops_desktop.promotion import requests as rq

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

log = logging.getLogger(__name__)


def display_name(actor: str) -> str:
    """The account's full name (GECOS), when the OS knows one."""
    try:
        import pwd

        gecos = pwd.getpwnam(actor).pw_gecos.split(",")[0].strip()
    except (KeyError, ImportError, OSError):
        return ""
    return gecos if gecos and gecos != actor else ""


def expire_due(ws: Workspace, *, now: float | None = None) -> list[int]:
    """Mark requests whose review time is over as expired (each once, in the audit log); their ids."""
    now = time.time() if now is None else now

    def tx(conn: sqlite3.Connection) -> list[int]:
        due = [int(r[0]) for r in conn.execute(
            "SELECT id FROM promotion_requests WHERE state = 'review' AND expires_at IS NOT NULL AND expires_at <= ?",
            (now,))]
        for rid in due:
            rq.set_state(conn, rid, "expired", "the review expired before enough approvals", decided_at=now)
            rq.notify(conn, rid, "warning", f"promotion request {rid} expired undecided")
            rq.record(conn, "promotion.expired", rid, actor="mlops-desktop", from_value="review",
                      to_value="expired", reason="not decided before it expired")
        return due

    if not ws.db.query("SELECT 1 FROM promotion_requests WHERE state = 'review' AND expires_at <= ? LIMIT 1", (now,)):
        return []
    return ws.db.write(tx)


def queue(ws: Workspace) -> list[rq.PromotionRequest]:
    """What waits for a person, oldest first."""
    expire_due(ws)
    return list(reversed(rq.list_requests(ws, states=("review",))))


def decide(ws: Workspace, request_id: int | str, decision: str, comment: str, *, actor: str | None = None,
           name: str | None = None, deploy_service: Any = None) -> rq.PromotionRequest:
    """Approve or reject; the approval that completes the count runs the promotion (alias, deployments)."""
    if decision not in ("approve", "reject"):
        raise UsageError(f"unknown decision {decision!r}", hint="approve or reject")
    comment = (comment or "").strip()
    if not comment:
        raise UsageError(f"a {'rejection' if decision == 'reject' else 'approval'} needs a comment",
                         hint="pass --comment \"why\"")
    actor = actor or audit.current_actor()
    name = display_name(actor) if name is None else name
    expire_due(ws)
    req = rq.get(ws, request_id)

    def tx(conn: sqlite3.Connection) -> str:
        state = conn.execute("SELECT state, expires_at FROM promotion_requests WHERE id = ?", (req.id,)).fetchone()
        if state[0] == "expired":
            raise UsageError(f"promotion request {req.id} expired at {time.strftime('%Y-%m-%d %H:%M', time.localtime(state[1]))}"
                             " before it was decided", hint=f"start a new one: `mlops-desktop promote start {req.ref}`")
        if state[0] != "review":
            raise UsageError(f"promotion request {req.id} is {state[0]}, not in review",
                             hint="only a request whose checks passed can be approved or rejected")
        if decision == "approve":
            if actor == req.candidate_by and not req.policy_data.get("allow_self_approval", False):
                raise UsageError(f"{actor} registered {req.ref} and cannot approve it: policy {req.policy!r} does "
                                 "not allow self-approval", hint="ask another reviewer")
            if conn.execute("SELECT 1 FROM promotion_decisions WHERE request_id = ? AND actor = ? AND "
                            "decision = 'approve'", (req.id, actor)).fetchone():
                raise UsageError(f"{actor} already approved promotion request {req.id}",
                                 hint="each approval must come from another person")
        now = time.time()
        conn.execute("INSERT INTO promotion_decisions(request_id, actor, display_name, decision, comment, ts) "
                     "VALUES (?,?,?,?,?,?)", (req.id, actor, name, decision, comment, now))
        if decision == "reject":
            rq.set_state(conn, req.id, "rejected", f"rejected by {actor}: {comment}", decided_at=now)
            rq.record(conn, "promotion.rejected", req.id, actor=actor, from_value="review", to_value="rejected",
                      reason=comment, details={"display_name": name})
            return "rejected"
        given = int(conn.execute("SELECT count(*) FROM promotion_decisions WHERE request_id = ? AND "
                                 "decision = 'approve'", (req.id,)).fetchone()[0])
        rq.record(conn, "promotion.approval", req.id, actor=actor, to_value=f"{given}/{req.approvals_needed}",
                  reason=comment, details={"display_name": name})
        if given < req.approvals_needed:
            rq.set_state(conn, req.id, "review", f"{given} of {req.approvals_needed} approvals")
            return "review"
        rq.set_state(conn, req.id, "deploying", f"approved by {given}; moving the alias")
        return "deploying"

    outcome = ws.db.write(tx)
    from mlops_desktop.promotion import labels

    try:
        labels.export(ws, req.model)
    except Exception as exc:  # noqa: BLE001 - the decision is recorded; the labels stay with the review
        log.warning("the labels of %s could not be written to the lake now (%s); the next export writes them",
                    req.model, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    if outcome == "deploying":
        return finish_approval(ws, rq.get(ws, req.id), actor=actor, deploy_service=deploy_service)
    return rq.get(ws, req.id)


def _deploy_service(ws: Workspace) -> Any:
    import importlib

    cls = getattr(importlib.import_module("mlops_desktop.deploy"), "DeploymentService", None)
    return cls(ws) if cls is not None and hasattr(cls, "update") else None


def _deployments_serving(service: Any, ref: str) -> list[str]:
    """Deployments whose spec names `ref` (MODEL@ALIAS): they follow the alias when it moves."""
    lister = getattr(service, "deployments", None)
    if lister is None:
        return []
    try:
        found = lister()
    except MlopsError:
        return []
    return [str(d.name) for d in found if getattr(getattr(d, "spec", None), "model_ref", None) == ref]


def finish_approval(ws: Workspace, req: rq.PromotionRequest, *, actor: str | None = None,
                    deploy_service: Any = None) -> rq.PromotionRequest:
    """Move the alias and update what serves it; idempotent, so a crash half-way resumes here. `deploy_service`:
    the deploy service to use (default: the build's `DeploymentService(ws)`, when it has one)."""
    from mlops_desktop import registry
    from mlops_desktop.serving import manager

    actor = actor or audit.current_actor()
    alias = req.champion_alias
    approvers = ", ".join(d.actor for d in req.approvals)
    reason = f"promotion {req.id} approved by {approvers}: " + "; ".join(d.comment for d in req.approvals)
    outcome: dict[str, Any] = dict(req.outcome)
    store = registry.store(ws)
    current = None
    try:
        current = store.resolve(f"{req.model}@{alias}").version
    except MlopsError:
        current = None
    if current != req.version:
        change = store.set_alias(req.model, alias, req.version, reason=reason[:1000], actor=actor)
        outcome["alias"] = {"alias": alias, "from": change.from_version, "to": change.to_version,
                            "event": change.event_id}
    else:
        outcome.setdefault("alias", {"alias": alias, "from": req.champion_version, "to": req.version})
    deployed: list[dict[str, Any]] = []
    ref_alias = f"{req.model}@{alias}"
    for server in manager.list_servers(ws):
        if server.ref != ref_alias or server.state not in ("running", "starting"):
            continue
        if server.version == str(req.version):
            deployed.append({"kind": "server", "name": server.name, "ok": True, "to": server.version,
                             "note": "already serving it"})
            continue
        try:
            after = manager.restart(ws, server.name, ref_alias)
            deployed.append({"kind": "server", "name": server.name, "ok": True, "from": server.version,
                             "to": after.version, "url": after.url})
        except MlopsError as exc:
            deployed.append({"kind": "server", "name": server.name, "ok": False, "error": exc.message})
    policy_deployments = req.policy_data.get("deployments")
    service = deploy_service if deploy_service is not None else _deploy_service(ws)
    names = list(policy_deployments) if policy_deployments is not None else (
        _deployments_serving(service, ref_alias) if service is not None else [])
    for name in names:
        if service is None:
            deployed.append({"kind": "deployment", "name": name, "ok": False,
                             "error": "deployments are not available in this build"})
            continue
        try:
            # by the alias, which now names the candidate: the deployment keeps following it
            rev = service.update(name, ref_alias, reason=reason[:1000])
            outcome_of = getattr(rev, "outcome", "healthy")
            ok = outcome_of in ("healthy", "succeeded", None)
            deployed.append({"kind": "deployment", "name": name, "ok": ok, "to": str(req.version),
                             "revision": getattr(rev, "number", None), "outcome": outcome_of,
                             **({} if ok else {"error": f"the rollout ended {outcome_of}: "
                                               f"{getattr(rev, 'detail', '')}"})})
        except MlopsError as exc:
            deployed.append({"kind": "deployment", "name": name, "ok": False, "error": exc.message})
    outcome["deployments"] = deployed
    failed = [d for d in deployed if not d["ok"]]
    message = f"approved: {ref_alias} -> {req.version}" + (
        f"; {len(deployed) - len(failed)} updated" if deployed else "") + (
        f"; {len(failed)} could not be updated: " + "; ".join(f"{d['name']}: {d['error']}" for d in failed)
        if failed else "")

    def tx(conn: sqlite3.Connection) -> None:
        import json

        rq.set_state(conn, req.id, "approved", message, decided_at=time.time(), outcome_json=json.dumps(outcome))
        rq.record(conn, "promotion.approved", req.id, actor=actor, from_value=req.champion_version,
                  to_value=req.version, reason=reason[:1000], details={"alias": alias})
        for d in deployed:
            rq.record(conn, "promotion.deployed" if d["ok"] else "promotion.deploy_failed", req.id, actor=actor,
                      to_value=d.get("to"), reason=d.get("error", ""), details={"kind": d["kind"], "name": d["name"]})
        if failed:
            rq.notify(conn, req.id, "error", f"{req.ref}: {message}")

    ws.db.write(tx)
    return rq.get(ws, req.id)


def page(ws: Workspace, request_id: int | str) -> dict[str, Any]:
    """Everything a reviewer reads, in one place: the request, each check's evidence, the metric diff against the
    champion, back-test windows, shadow figures and disagreements, drift, the image, lineage, labels, decisions."""
    from mlops_desktop import registry
    from mlops_desktop.promotion import samples

    expire_due(ws)
    req = rq.get(ws, request_id)
    store = registry.store(ws)
    candidate = store.get_version(req.model, req.version)
    champion = store.get_version(req.model, req.champion_version) if req.champion_version is not None else None
    by_kind: dict[str, dict[str, Any]] = {}
    for c in req.checks:
        by_kind.setdefault(c.kind, c.evidence)
    kept = samples.load(ws, req.id)
    holdout = by_kind.get("holdout", {})
    shadow = by_kind.get("shadow", {})
    return {
        "request": req.to_dict(),
        "candidate": {"ref": candidate.ref, "created_by": candidate.created_by, "created_at": candidate.created_at,
                      "run": candidate.run_uuid, "inputs": [dict(i) for i in candidate.inputs],
                      "bundle_hash": candidate.bundle_hash, "flavor": candidate.flavor,
                      "metrics": dict(candidate.metrics), "description": candidate.description},
        "champion": None if champion is None else {"ref": champion.ref, "run": champion.run_uuid,
                                                   "bundle_hash": champion.bundle_hash},
        "metric_diff": [{"metric": k, "candidate": v, "champion": (holdout.get("champion") or {}).get(k),
                         "diff": (holdout.get("diff") or {}).get(k)} for k, v in (holdout.get("candidate") or {})
                        .items()],
        "backtest_windows": by_kind.get("backtest", {}).get("windows", []),
        "shadow": {k: shadow.get(k) for k in ("requests", "candidate", "champion", "disagreed_requests", "window",
                                              "errors", "source", "arm")} if shadow else None,
        "drift": shadow.get("drift") if shadow else None,
        "image": {k: by_kind.get("image", {}).get(k) for k in ("image", "digest", "latency_ms", "budget_ms")}
        if "image" in by_kind else None,
        "samples": {"total": len(kept), "disagreements": sum(1 for s in kept if not s.agree),
                    "labelled": sum(1 for s in kept if s.label is not None)},
        "history": [e.to_dict() for e in audit.events(ws.db, subject=rq.subject(req.id))],
    }
