"""What a Kubernetes deployment looks like now: per-pod health in our words, recent events, logs (followed), URLs.

Pods are found by the `mlops.deployment` label, so the single workload, the arms and the router are all included.
A pod's health: `ready` (Ready and answering our readiness check through the API server's pod proxy), `starting`,
`unhealthy` (running, readiness failing; or an image that cannot be pulled), `crashed` (CrashLoopBackOff, restarts),
`stopped` (terminating or finished). Logs of several pods are merged line by line, each prefixed by its pod.
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlops_desktop.deploy import kube_manifests as km
from mlops_desktop.deploy import kube_rollout as kr
from mlops_desktop.deploy.backend import EngineUnreachable
from mlops_desktop.errors import MlopsError

if TYPE_CHECKING:
    from mlops_desktop.deploy.kubernetes import KubernetesBackend
    from mlops_desktop.deploy.models import Endpoint, ReplicaStatus, Status

EVENTS_KEPT = 20
LOG_RESCAN_S = 2.0


def replica_status(pod: Any, checker: kr.ReadinessChecker | None) -> ReplicaStatus:
    from mlops_desktop.deploy.models import ReplicaStatus

    labels = pod.metadata.labels or {}
    role = labels.get(km.LABEL_ROLE, "model")
    port = next((p.container_port for c in pod.spec.containers for p in (c.ports or []) if p.name == "http"), 8080)
    started = pod.status.start_time.timestamp() if pod.status.start_time else None
    common = {"id": pod.metadata.name, "version": labels.get(km.LABEL_VERSION, ""),
              "arm": "router" if role == "router" else labels.get(km.LABEL_ARM, ""),
              "node": pod.spec.node_name or "", "address": f"{pod.status.pod_ip}:{port}" if pod.status.pod_ip else "",
              "started_at": started}
    if pod.metadata.deletion_timestamp is not None or pod.status.phase in ("Succeeded", "Failed"):
        return ReplicaStatus(health="stopped", detail="terminating" if pod.metadata.deletion_timestamp else
                             (pod.status.phase or "").lower(), **common)
    if kr.pod_ready(pod):
        if checker is not None:
            ok, note = checker(pod)
            if not ok:
                return ReplicaStatus(health="unhealthy", detail=note, **common)
        restarts = sum(cs.restart_count or 0 for cs in pod.status.container_statuses or [])
        return ReplicaStatus(health="ready", detail=f"{restarts} restarts" if restarts else "", **common)
    text, fatal = kr.pod_problem(pod)
    if "CrashLoopBackOff" in text or "restarted" in text:
        health = "crashed"
    elif fatal or "readiness" in text:
        health = "unhealthy"
    else:
        health = "starting"
    return ReplicaStatus(health=health, detail=text, **common)  # type: ignore[arg-type]


def _events(backend: KubernetesBackend, name: str, owned: set[str]) -> tuple[str, ...]:
    api = backend.api
    try:
        items = api.call(api.core().list_namespaced_event, api.namespace, what="listing events").items
    except Exception:
        return ()
    mine = []
    for ev in items:
        obj = ev.involved_object
        if obj is None or obj.name not in owned:
            continue
        at = ev.last_timestamp or ev.event_time or ev.first_timestamp
        stamp = at.timestamp() if at is not None else 0.0
        count = f" (x{ev.count})" if ev.count and ev.count > 1 else ""
        mine.append((stamp, f"{time.strftime('%H:%M:%S', time.localtime(stamp))} {obj.kind}/{obj.name} "
                            f"{ev.reason}: {(ev.message or '').strip()}{count}"))
    mine.sort(key=lambda x: x[0])
    return tuple(text for _, text in mine[-EVENTS_KEPT:])


def status(backend: KubernetesBackend, name: str) -> Status:
    from mlops_desktop.deploy.models import Status
    from mlops_desktop.deploy.names import check_deployment_name

    check_deployment_name(name)
    api = backend.api
    now = time.time()
    deps = api.call(api.apps().list_namespaced_deployment, api.namespace,
                    label_selector=f"{km.LABEL_DEPLOYMENT}={name}", what=f"listing the Deployments of {name}").items
    if not deps:
        return Status(desired=0, ready=0, state="missing", observed_at=now,
                      reason=f"no Deployment of {name!r} in namespace {api.namespace}")
    pods = backend.pods(name)
    port = 8080
    checker = kr.ReadinessChecker(api, port)
    replicas = []
    for pod in sorted(pods, key=lambda p: ((p.metadata.labels or {}).get(km.LABEL_ROLE) == "router",
                                           p.metadata.name)):
        port_here = next((p.container_port for c in pod.spec.containers for p in (c.ports or [])
                          if p.name == "http"), port)
        checker.port = port_here
        replicas.append(replica_status(pod, checker))
    models = [d for d in deps if (d.metadata.labels or {}).get(km.LABEL_ROLE) != "router"]
    routers = [d for d in deps if (d.metadata.labels or {}).get(km.LABEL_ROLE) == "router"]
    desired = sum(int(d.spec.replicas or 0) for d in models)
    ready = sum(1 for r in replicas if r.health == "ready" and r.arm != "router")
    router_ready = all(any(r.health == "ready" and r.arm == "router" for r in replicas) for _ in routers)
    rolling = [d.metadata.name for d in deps if (d.status.observed_generation or 0) < (d.metadata.generation or 0)
               or (d.status.updated_replicas or 0) < (d.spec.replicas or 0)
               or (d.status.replicas or 0) > (d.spec.replicas or 0)]
    bad = [f"{r.id}: {r.detail}" for r in replicas if r.health in ("crashed", "unhealthy")]
    if desired == 0:
        state, reason = "stopped", "scaled to 0"
    elif ready >= desired and router_ready and not rolling:
        state, reason = "healthy", f"{ready}/{desired} replicas ready"
    elif rolling and not bad:
        state, reason = "progressing", "rolling out: " + ", ".join(rolling)
    elif ready == 0:
        state, reason = "failed", "no replica ready" + (": " + "; ".join(bad[:3]) if bad else "")
    else:
        state, reason = "degraded", f"{ready}/{desired} replicas ready" + (": " + "; ".join(bad[:3]) if bad else "")
    sets = api.call(api.apps().list_namespaced_replica_set, api.namespace,
                    label_selector=f"{km.LABEL_DEPLOYMENT}={name}", what=f"listing the ReplicaSets of {name}").items
    owned = {d.metadata.name for d in deps} | {p.metadata.name for p in pods} | {r.metadata.name for r in sets}
    return Status(desired=desired, ready=ready, replicas=tuple(replicas), state=state,  # type: ignore[arg-type]
                  reason=reason, events=_events(backend, name, owned), observed_at=now)


def endpoints(backend: KubernetesBackend, name: str) -> list[Endpoint]:
    """The Service `name` through its NodePort (the router when there is one): what this machine can reach."""
    from mlops_desktop.deploy.models import Endpoint
    from mlops_desktop.deploy.names import check_deployment_name

    check_deployment_name(name)
    api = backend.api
    svc = api.get(api.core().read_namespaced_service, name, api.namespace, what=f"reading Service {name}")
    if svc is None:
        return []
    role = "router" if (svc.spec.selector or {}).get(km.LABEL_WORKLOAD) == backend.router_name(name) else "replica"
    port = (svc.spec.ports or [None])[0]
    ingress = (svc.status.load_balancer.ingress or []) if svc.status and svc.status.load_balancer else []
    lb = next((i.ip or i.hostname for i in ingress if i.ip or i.hostname), None)
    if port is None or not (port.node_port or lb):
        return []
    url = f"http://{lb}:{port.port}" if lb else f"http://{backend.node_address()}:{port.node_port}"
    out = [Endpoint(url=url, role=role)]  # type: ignore[arg-type]
    if role == "router":
        out.append(Endpoint(url=url + "/admin", role="admin"))
    return out


def logs(backend: KubernetesBackend, name: str, *, follow: bool = False, since: float | None = None) -> Iterator[str]:
    """Every pod's lines, prefixed `pod | `; with `follow`, new pods (a rollout's) join as they appear, and the
    stream ends when the deployment has no pods left or the iterator is closed."""
    from mlops_desktop.deploy.names import check_deployment_name

    check_deployment_name(name)
    api = backend.api
    since_s = max(1, math.ceil(time.time() - since)) if since is not None else None

    def container_of(pod: Any) -> str:
        return km.ROUTER_CONTAINER if (pod.metadata.labels or {}).get(km.LABEL_ROLE) == "router" \
            else km.MODEL_CONTAINER

    if not follow:
        def once() -> Iterator[str]:
            for pod in sorted(backend.pods(name), key=lambda p: p.metadata.name):
                if pod.status.phase == "Pending":
                    continue
                kwargs: dict[str, Any] = {"container": container_of(pod)}
                if since_s is not None:
                    kwargs["since_seconds"] = since_s
                try:
                    text = api.get(api.core().read_namespaced_pod_log, pod.metadata.name, api.namespace,
                                   what=f"reading the log of pod {pod.metadata.name}", **kwargs) or ""
                except EngineUnreachable:
                    raise
                except MlopsError as exc:  # one pod's log is gone (a rollout's old pod ending): the others still count
                    if pod.metadata.deletion_timestamp is None:
                        yield f"{pod.metadata.name} | -- cannot read its log: {exc.message}"
                    continue
                for line in str(text).splitlines():
                    yield f"{pod.metadata.name} | {line}"
        return once()
    return _follow(backend, name, since_s, container_of)


def _follow(backend: KubernetesBackend, name: str, since_s: int | None, container_of: Any) -> Iterator[str]:
    api = backend.api
    lines: queue.Queue[str | None] = queue.Queue(maxsize=10000)
    stop = threading.Event()
    streams: dict[str, Any] = {}
    lock = threading.Lock()

    def pump(pod_name: str, container: str) -> None:
        kwargs: dict[str, Any] = {"container": container, "follow": True, "_preload_content": False,
                                  "_request_timeout": (5.0, None)}
        if since_s is not None:
            kwargs["since_seconds"] = since_s
        try:
            resp = api.core().read_namespaced_pod_log(pod_name, api.namespace, **kwargs)
        except Exception:  # the pod went away or is not started: the rescan tries again
            with lock:
                streams.pop(pod_name, None)
            return
        with lock:
            streams[pod_name] = resp
        buf = b""
        try:
            for chunk in resp.stream(4096):
                if stop.is_set():
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    lines.put(f"{pod_name} | {line.decode('utf-8', 'replace')}")
            if buf:
                lines.put(f"{pod_name} | {buf.decode('utf-8', 'replace')}")
        except Exception:  # noqa: S110 - a stream cut by the pod ending, or by close()
            pass
        finally:
            with contextlib.suppress(Exception):
                resp.release_conn()

    def scan() -> None:
        started: set[str] = set()
        empty_since: float | None = None
        while not stop.is_set():
            try:
                pods = backend.pods(name)
            except Exception as exc:
                lines.put(f"-- the API server stopped answering: {exc}")
                break
            live = [p for p in pods if p.status.phase in ("Running", "Succeeded", "Failed")]
            for pod in live:
                if pod.metadata.name not in started:
                    started.add(pod.metadata.name)
                    threading.Thread(target=pump, args=(pod.metadata.name, container_of(pod)), daemon=True,
                                     name=f"kube-log-{pod.metadata.name}").start()
            if not pods:
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since > LOG_RESCAN_S * 2:
                    break
            else:
                empty_since = None
            stop.wait(LOG_RESCAN_S)
        lines.put(None)

    scanner = threading.Thread(target=scan, daemon=True, name=f"kube-log-scan-{name}")
    scanner.start()
    try:
        while True:
            item = lines.get()
            if item is None:
                return
            yield item
    finally:
        stop.set()
        with lock:
            open_streams = list(streams.values())
        for resp in open_streams:
            _cut(resp)


def _cut(resp: Any) -> None:
    """End a followed log stream that a pump thread is blocked reading. `close()` alone waits for that read (the
    socket's reader lock): with a quiet pod, forever. Shutting the socket down first makes the read return."""
    import socket

    sock = getattr(getattr(resp, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(Exception):
        resp.close()
