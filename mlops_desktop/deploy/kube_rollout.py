"""Watching a Deployment's rollout until its new ReplicaSet's pods are ready (as we check them), and undoing it.

A Deployment's `progressDeadlineSeconds` only sets a condition; nothing rolls back by itself. So the backend watches:
the new ReplicaSet (the one whose template carries the hash we rendered, newest revision) must have every pod Ready
(the kubelet's readiness probe on /v2/health/ready) AND answering OUR readiness check through the API server's pod
proxy, and the old pods must be gone, before the deadline. A pod that cannot start (image pull refused, bad config)
or crash-loops fails the rollout at once instead of waiting out the deadline. `undo` restores the template of an
earlier ReplicaSet exactly as `kubectl rollout undo` does (a JSON patch guarded by the Deployment's generation).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.deploy.backend import READY_PATH
from mlops_desktop.deploy.kube_manifests import ANN_TEMPLATE, FATAL_WAITING, K8S_REVISION
from mlops_desktop.deploy.kube_objects import patch_deployment

if TYPE_CHECKING:
    from mlops_desktop.deploy.kube_client import KubeApi

POLL_S = 0.5
_PERMANENT_PULL = re.compile(r"401|403|unauthori[sz]ed|denied|not found|manifest unknown|no such host|invalid",
                             re.IGNORECASE)
CRASH_RESTARTS = 2  # a new pod that restarted this often without becoming ready is crash-looping


@dataclass
class RolloutWatch:
    """What one watch saw: done (all new pods seen ready), or why not; ready/desired counts; events in words."""

    ok: bool = False
    detail: str = ""
    ready: int = 0
    desired: int = 0
    fatal: bool = False
    events: list[str] = field(default_factory=list)


def owned_replica_sets(api: KubeApi, dep: Any) -> list[Any]:
    items = api.call(api.apps().list_namespaced_replica_set, api.namespace,
                     label_selector=",".join(f"{k}={v}" for k, v in sorted(dep.spec.selector.match_labels.items())),
                     what=f"listing the ReplicaSets of {dep.metadata.name}").items
    return [rs for rs in items if any(o.uid == dep.metadata.uid for o in (rs.metadata.owner_references or []))]


def rs_revision(rs: Any) -> int:
    try:
        return int((rs.metadata.annotations or {}).get(K8S_REVISION, "0"))
    except ValueError:
        return 0


def template_hash(obj: Any) -> str:
    """Our rendered-template hash on a Deployment's or ReplicaSet's pod template ('' if not ours)."""
    return str((obj.spec.template.metadata.annotations or {}).get(ANN_TEMPLATE, ""))


def new_replica_set(api: KubeApi, dep: Any) -> Any | None:
    """The ReplicaSet of the Deployment's current template: newest revision with its pod-template hash."""
    want = template_hash(dep)
    sets = sorted(owned_replica_sets(api, dep), key=rs_revision, reverse=True)
    for rs in sets:
        if template_hash(rs) == want and _same_restart(rs, dep):
            return rs
    return None


def _same_restart(rs: Any, dep: Any) -> bool:
    key = "kubectl.kubernetes.io/restartedAt"
    return (rs.spec.template.metadata.annotations or {}).get(key) == \
        (dep.spec.template.metadata.annotations or {}).get(key)


def pod_problem(pod: Any) -> tuple[str, bool]:
    """(why the pod is not ready in words, fatal?) — fatal: it will not become ready by waiting."""
    statuses = pod.status.container_statuses or []
    for cs in statuses:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason:
            msg = _short(waiting.message or "")
            text = f"{waiting.reason}" + (f": {msg}" if msg else "")
            if waiting.reason == "ErrImagePull" and not _PERMANENT_PULL.search(waiting.message or ""):
                return text, False  # the kubelet tries again (ImagePullBackOff) before we give up
            if waiting.reason in FATAL_WAITING:
                return text, True
            if waiting.reason == "CrashLoopBackOff" or (cs.restart_count or 0) >= CRASH_RESTARTS:
                last = cs.last_state.terminated if cs.last_state else None
                code = f" (exit code {last.exit_code})" if last is not None and last.exit_code is not None else ""
                return f"CrashLoopBackOff{code}, {cs.restart_count} restarts", True
            return text, False
        if (cs.restart_count or 0) >= CRASH_RESTARTS and not cs.ready:
            return f"restarted {cs.restart_count} times without becoming ready", True
    for cond in pod.status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            return f"not scheduled: {cond.message or cond.reason}", False
    if statuses and not all(cs.ready for cs in statuses):
        return "running, not ready (its readiness probe on /v2/health/ready fails)", False
    return (pod.status.phase or "pending").lower(), False


def _short(message: str) -> str:
    """The informative end of a kubelet message (they nest 'failed to X: failed to Y: 401 Unauthorized')."""
    text = " ".join(message.split())
    return text if len(text) <= 240 else "..." + text[-237:]


def pod_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class ReadinessChecker:
    """OUR readiness check of a pod: GET /v2/health/ready through the API server's pod proxy (works from any
    desktop that can reach the API server; no port-forward). Where RBAC forbids pods/proxy, the kubelet's readiness
    probe (the same path) is what we go by, and the rollout's events say so."""

    def __init__(self, api: KubeApi, port: int | str) -> None:
        self.api = api
        self.port = port
        self.seen: set[str] = set()
        self.proxy_forbidden = False

    def __call__(self, pod: Any) -> tuple[bool, str]:
        from kubernetes.client.rest import ApiException

        name = pod.metadata.name
        if name in self.seen:
            return True, ""
        if self.proxy_forbidden:
            return True, ""
        core = self.api.core()
        port = self.port if str(self.port).isdigit() else next(
            (p.container_port for c in pod.spec.containers for p in (c.ports or []) if p.name == self.port), 8080)
        try:
            core.connect_get_namespaced_pod_proxy_with_path(f"{name}:{port}", self.api.namespace,
                                                            READY_PATH.lstrip("/"), _request_timeout=(3.0, 3.0))
        except ApiException as exc:
            if exc.status == 403:
                self.proxy_forbidden = True
                return True, "readiness as the kubelet sees it (the API server forbids pods/proxy to this user)"
            if exc.status and exc.status < 500 and exc.status not in (404, 429):
                return False, f"our readiness check through the API server's pod proxy got HTTP {exc.status}"
            return False, "our readiness check through the API server's pod proxy does not pass yet"
        except Exception as exc:
            raise self.api.translate(exc, f"the readiness check of pod {name}") from None
        self.seen.add(name)
        return True, ""


def watch(api: KubeApi, name: str, deadline_at: float, *, port: int | str = "http",
          progress: Callable[[float, str], None] | None = None, start: float = 0.0, span: float = 1.0,
          checker: ReadinessChecker | None = None) -> RolloutWatch:
    """Wait until Deployment `name` has rolled out (every pod of its new ReplicaSet ready, old pods gone), the
    deadline passes, or a new pod cannot start. Raises EngineUnreachable when the API server stops answering."""
    apps, core = api.apps(), api.core()
    out = RolloutWatch()
    checker = checker or ReadinessChecker(api, port)
    said: set[str] = set()
    last_msg = ""

    def say(text: str) -> None:
        if text not in said:
            said.add(text)
            out.events.append(text)

    while True:
        dep = api.call(apps.read_namespaced_deployment, name, api.namespace, what=f"reading Deployment {name}")
        desired = int(dep.spec.replicas or 0)
        out.desired = desired
        observed = (dep.status.observed_generation or 0) >= (dep.metadata.generation or 0)
        rs = new_replica_set(api, dep) if observed else None
        pods: list[Any] = []
        if rs is not None:
            hash_label = (rs.metadata.labels or {}).get("pod-template-hash", "")
            sel = ",".join(f"{k}={v}" for k, v in sorted(dep.spec.selector.match_labels.items()))
            all_pods = api.call(core.list_namespaced_pod, api.namespace, label_selector=sel,
                                what=f"listing the pods of {name}").items
            pods = [p for p in all_pods if (p.metadata.labels or {}).get("pod-template-hash") == hash_label
                    and p.metadata.deletion_timestamp is None]
            # terminating pods are draining, as `kubectl rollout status` sees it: only live old pods count
            old = [p for p in all_pods if (p.metadata.labels or {}).get("pod-template-hash") != hash_label
                   and p.status.phase not in ("Succeeded", "Failed") and p.metadata.deletion_timestamp is None]
            ready = 0
            problems: list[str] = []
            for pod in pods:
                if pod_ready(pod):
                    ok, note = checker(pod)
                    if note:
                        say(note)
                    if ok:
                        ready += 1
                        continue
                    problems.append(f"pod {pod.metadata.name}: {note or 'not answering'}")
                    continue
                text, fatal = pod_problem(pod)
                problems.append(f"pod {pod.metadata.name}: {text}")
                if fatal:
                    out.ready, out.fatal = ready, True
                    out.detail = f"pod {pod.metadata.name} of the new ReplicaSet cannot become ready: {text}"
                    say(out.detail)
                    return out
            out.ready = min(ready, desired)
            msg = f"{out.ready}/{desired} new pods ready" + (f", {len(old)} old still running" if old else "")
            if msg != last_msg:
                last_msg = msg
                if progress is not None:
                    progress(start + span * (out.ready / desired if desired else 1.0), msg)
            if ready >= desired and not old and (dep.status.updated_replicas or 0) >= desired:
                out.ok = True
                out.detail = f"{desired}/{desired} pods of ReplicaSet {rs.metadata.name} ready"
                say(out.detail)
                return out
            if problems:
                out.detail = "; ".join(problems[:3])
        else:
            out.detail = "waiting for the Deployment controller to create the new ReplicaSet"
        if time.monotonic() >= deadline_at:
            out.detail = f"not ready by the deadline: {out.ready}/{desired} new pods ready" + \
                (f" ({out.detail})" if out.detail else "")
            say(out.detail)
            return out
        time.sleep(POLL_S)


def undo(api: KubeApi, name: str, to_revision: int | None = None) -> int | None:
    """Restore an earlier ReplicaSet's pod template (the previous one, or `to_revision`) as `kubectl rollout undo`
    does; the revision restored, or None when there is none. Old pods still running are reused at once."""
    from kubernetes import client

    apps = api.apps()
    dep = api.call(apps.read_namespaced_deployment, name, api.namespace, what=f"reading Deployment {name}")
    sets = owned_replica_sets(api, dep)
    current = new_replica_set(api, dep)
    cur_rev = rs_revision(current) if current is not None else max((rs_revision(r) for r in sets), default=0) + 1
    by_rev = {rs_revision(rs): rs for rs in sets if current is None or rs.metadata.uid != current.metadata.uid}
    if to_revision is None:
        earlier = [r for r in by_rev if r < cur_rev]
        if not earlier:
            return None
        to_revision = max(earlier)
    if to_revision not in by_rev:
        return None
    tmpl = client.ApiClient().sanitize_for_serialization(by_rev[to_revision].spec.template)
    tmpl.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
    patch_deployment(api, dep, [{"op": "replace", "path": "/spec/template", "value": tmpl}],
                     f"restoring revision {to_revision} of Deployment {name}")
    return to_revision
