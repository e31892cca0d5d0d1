"""Deployments area test data: targets added and deployment rows written through the deploy service and its store
(the same calls a rollout makes), for views that need no engine, and a target whose engine does not exist."""

from __future__ import annotations

import time
from pathlib import Path


def nowhere_socket(tmp_path: Path) -> str:
    """A DOCKER_HOST where no engine listens (a unix socket path that does not exist)."""
    return f"unix://{tmp_path / 'no-engine' / 'docker.sock'}"


def add_unreachable_target(ws, tmp_path: Path, name: str = "lab", kind: str = "swarm"):
    from mlops_desktop.deploy.service import DeploymentService

    return DeploymentService(ws).add_target(name, kind, address=nowhere_socket(tmp_path))


def write_deployment(ws, name: str, target: str, model: str = "churn", revisions: tuple = (), replicas: int = 2,
                     router=None, images: str = "127.0.0.1:5000/mlops/{model}:{version}"):
    """A deployment and its revisions, as the service records them: `revisions` is a list of
    (version, outcome, action, reason, actor). The newest healthy revision is the current one."""
    from mlops_desktop.deploy.models import DeploymentSpec, Revision
    from mlops_desktop.deploy.service import DeploymentService

    svc = DeploymentService(ws)
    store = svc.store
    now = time.time() - 3600 * len(revisions)
    first = revisions[0][0] if revisions else 1
    spec = DeploymentSpec(name=name, target=target, model_ref=f"{model}/{first}", model=model, version=first,
                          replicas=replicas)
    current, current_spec = 0, spec
    with ws.db.transaction() as conn:
        dep_id = store.insert_deployment(conn, spec, "alice")
        for i, (version, outcome, action, reason, actor) in enumerate(revisions, start=1):
            rev_spec = spec.with_(model_ref=f"{model}/{version}", version=version)
            image = images.format(model=model, version=version)
            rev = Revision(deployment=name, number=i, model=model, version=version, image=image, actor=actor,
                           at=now + 3600 * i, reason=reason, outcome="pending", action=action, spec=rev_spec,
                           router=router if i == len(revisions) else None)
            store.insert_revision(conn, dep_id, rev)
            detail = {"healthy": f"{replicas}/{replicas} replicas ready",
                      "rolled_back": "replica 2 not ready within 30 s: /v2/health/ready answered 503; previous "
                                     "revision restored"}.get(outcome, "")
            store.finish_revision(conn, name, i, outcome, detail,
                                  rolled_back_to=current if outcome == "rolled_back" else None)
            if outcome == "healthy":
                if current:
                    prev = store.revision(name, current)
                    if action == "rollback" and prev.outcome == "healthy":
                        store.finish_revision(conn, name, current, "reverted",
                                              f"switched back from it by revision {i}", rolled_back_to=i)
                current, current_spec = i, rev_spec
                store.set_current(conn, name, rev_spec, rev.router, i)
        store.set_state(name, "healthy" if current else "failed", "", conn)
    for i, (version, outcome, _a, _r, _w) in enumerate(revisions, start=1):
        store.add_event(name, i, "rollout", f"revision {i} ({model}/{version}) rolling out on {target}, "
                        "deadline 60 s")
        store.add_event(name, i, "outcome", f"revision {i}: {outcome}")
    return svc.get(name), current_spec


STANDARD_REVISIONS = (
    (1, "healthy", "create", "first deployment", "alice"),
    (2, "healthy", "update", "retrained on November data", "alice"),
    (3, "rolled_back", "update", "new features", "bob"),
    (3, "healthy", "update", "new features, fixed the feature order", "bob"),
)
