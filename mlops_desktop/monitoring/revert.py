"""The switch back to the last stable version, for whatever the monitored deployment is:
- a deployment of the deploy service: `DeploymentService.revert(name, reason, cause)` (its last revision that was
  healthy and not alerting), after `flag_alerting` marks the current revision with the alert;
- a managed local router: the kill switch (every request to the stable arm), a live change through the router's
  admin API, recorded in its change log and the audit log (router_manager.change);
- a managed local server: a restart on the version it ran before (from its event log), without refused connections.
Each revert is also an audit event `monitor.revert` naming the alert that caused it.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring import targets as targets_mod
from mlops_desktop.monitoring.alerts import actor

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace


def stable_version(ws: Workspace, deployment: str) -> dict[str, Any]:
    """What a revert would go back to, for the confirmation ("Revert churn to version 3?")."""
    dep = targets_mod.resolve(ws, deployment)
    if dep.kind == "deploy":
        with targets_mod.deploy_service(ws) as svc:
            rev = svc.last_stable(deployment)
        if rev is None:
            raise UsageError(f"deployment {deployment!r} has no earlier stable revision (healthy, not alerting)",
                             hint=f"`deploy history {deployment}`")
        return {"kind": "deploy", "to": str(rev.version), "revision": rev.number, "model": rev.model}
    if dep.kind == "router":
        return {"kind": "router", "to": dep.arms.get(dep.stable) or dep.stable, "arm": dep.stable}
    prev = _previous_server_version(ws, deployment)
    if prev is None:
        raise UsageError(f"the server {deployment!r} has no earlier version to go back to",
                         hint="it has run only one version")
    return {"kind": "server", "to": prev, "model": dep.model}


def _previous_server_version(ws: Workspace, name: str) -> str | None:
    from mlops_desktop.serving import manager

    server = manager.get(ws, name)
    for event in reversed(manager.events(ws, name)):
        if event.get("to_version") == server.version and event.get("from_version") and \
                event.get("from_version") != server.version:
            return str(event["from_version"])
    return None


def revert(ws: Workspace, deployment: str, *, reason: str, alert_id: int | None = None,
           who: str | None = None) -> dict[str, Any]:
    """Switch `deployment` back to its stable version now; returns what was done (kind, to, seconds)."""
    from mlops_desktop import audit

    if not reason.strip():
        raise UsageError("a revert needs a reason", hint="--reason 'p99 over 500 ms since 14:02'")
    who = who or actor()
    started = time.monotonic()
    dep = targets_mod.resolve(ws, deployment)
    cause = f"alert:{alert_id}" if alert_id is not None else "manual"
    done: dict[str, Any]
    if dep.kind == "deploy":
        with targets_mod.deploy_service(ws) as svc:
            if alert_id is not None:
                current = svc.get(deployment).current_revision
                with contextlib.suppress(UsageError):  # the revision may be gone; the revert still goes ahead
                    svc.flag_alerting(deployment, current, str(alert_id))
            rev = svc.revert(deployment, reason, cause)
        done = {"kind": "deploy", "to": str(rev.version), "revision": rev.number,
                "how": f"rolled back to revision {rev.number}"}
    elif dep.kind == "router":
        from mlops_desktop.serving import router_manager

        router_manager.change(ws, dep.admin or deployment, actor=who, reason=f"{reason} [{cause}]",
                              kill_switch=True)
        done = {"kind": "router", "to": dep.arms.get(dep.stable) or dep.stable, "arm": dep.stable,
                "how": "kill switch: all traffic to the stable arm"}
    else:
        from mlops_desktop.serving import manager

        target = stable_version(ws, deployment)
        manager.restart(ws, deployment, f"{dep.model}/{target['to']}")
        done = {"kind": "server", "to": target["to"], "how": "restarted on the previous version"}
    done["seconds"] = round(time.monotonic() - started, 3)
    ws.db.write(lambda c: audit.append(c, "monitor.revert", f"deployment:{deployment}", to_value=done.get("to"),
                                       reason=reason, details={"alert_id": alert_id, "cause": cause} | done,
                                       actor=who))
    return done
