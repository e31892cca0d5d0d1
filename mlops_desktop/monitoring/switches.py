"""The live switches of a monitored deployment's router, wired (not rewritten): weights, shadow on/off, a
classifier's decision threshold and the kill switch go through the router's admin API (serving/router_admin.py),
which checks, applies, saves and logs each change with who and why; here each change event is also appended to the
workspace's audit log. A managed router goes through `router_manager.change`; a deploy-service deployment's router
through the admin address and token its backend reports (`router_admin`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring import targets as targets_mod

if TYPE_CHECKING:
    from mlops_desktop.serving.router_client import AdminClient
    from mlops_desktop.workspace import Workspace


@contextlib.contextmanager
def admin_client(ws: Workspace, deployment: str) -> Iterator[tuple[AdminClient, str]]:
    """(admin client, audit subject) of the deployment's router; refused in words when it has none."""
    from mlops_desktop.serving.router_client import AdminClient

    dep = targets_mod.resolve(ws, deployment)
    if dep.kind == "router":
        from mlops_desktop.serving import router_manager

        yield router_manager.client(ws, dep.admin or deployment), f"router:{dep.admin or deployment}"
        return
    if dep.kind == "deploy":
        with targets_mod.deploy_service(ws) as svc:
            info = svc.get(deployment)
            found = svc.backend(info.target).router_admin(deployment)
        if found is None:
            raise UsageError(f"deployment {deployment!r} has no router, so no live switches",
                             hint=f"`deploy split {deployment} ...` puts a router in front of two versions")
        url, token = found
        yield AdminClient(url, token), f"deployment:{deployment}"
        return
    raise UsageError(f"{deployment!r} is a single server: it has no router switches",
                     hint="start a router in front of it (`router start`), or deploy with a split")


def state(ws: Workspace, deployment: str, *, changes: int = 30) -> dict[str, Any]:
    """The router's live settings, arms and its last `changes` change events (newest last)."""
    with admin_client(ws, deployment) as (client, _subject):
        st = client.state()
        total = int(st.get("changes") or 0)
        st["change_log"] = client.changes(max(0, total - changes))
    return st


def change(ws: Workspace, deployment: str, *, actor: str, reason: str, **settings: Any) -> dict[str, Any]:
    """One live change (weights=, kill_switch=, shadow=, threshold=), recorded with who and why."""
    from mlops_desktop import audit

    if not reason.strip():
        raise UsageError("a live change needs a reason", hint="it is recorded with who made it")
    dep = targets_mod.resolve(ws, deployment)
    if dep.kind == "router":
        from mlops_desktop.serving import router_manager

        return router_manager.change(ws, dep.admin or deployment, actor=actor, reason=reason, **settings)
    with admin_client(ws, deployment) as (client, subject):
        answer = client.change(actor=actor, reason=reason, **settings)
        url = client.url
    for event in answer.get("changes", []):
        details = dict(event.get("details") or {}) | {"router_seq": event["seq"], "router_hash": event["hash"],
                                                      "router_url": url}

        def record(conn: Any, e: dict[str, Any] = event, d: dict[str, Any] = details) -> Any:
            return audit.append(conn, e["kind"], subject, from_value=e["from_value"], to_value=e["to_value"],
                                reason=e["reason"], details=d, actor=e["actor"], ts=e["ts"])

        ws.db.write(record)
    return answer
