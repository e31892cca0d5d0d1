"""A/B and shadow on Kubernetes without Istio or Knative: our router as its own Deployment in front of the arms.

Each arm is a Deployment + ClusterIP Service `NAME-vN`; the router's config (ConfigMap `NAME-router`) lists each arm's
ClusterIP (kube-proxy spreads the requests over the arm's pods, and follows their restarts without a config change);
the admin token lives in Secret `NAME-router-admin` (mounted as a file, never in our database). Order: arms first,
then the router, and only when both are ready does Service `NAME` switch its selector to the router (keeping its
NodePort). A failure undoes what changed and leaves Service `NAME` where it was. Live weights go through the
router's admin API at the Service's NodePort (`router_admin`), no port-forward.
"""

from __future__ import annotations

import base64
import json
import time
from typing import TYPE_CHECKING

from mlops_desktop.deploy import kube_manifests as km
from mlops_desktop.deploy import kube_objects as ko
from mlops_desktop.deploy import kube_rollout as kr
from mlops_desktop.deploy.backend import ROUTER_SUFFIX, ProgressFn
from mlops_desktop.deploy.names import check_deployment_name, workload_name

if TYPE_CHECKING:
    from mlops_desktop.deploy.kubernetes import KubernetesBackend
    from mlops_desktop.deploy.models import DeploymentSpec, Revision, RolloutResult, RouterPlan


def router_stable(backend: KubernetesBackend, name: str) -> str | None:
    """The stable arm from the router's ConfigMap, or None without a router."""
    api = backend.api
    cm = api.get(api.core().read_namespaced_config_map, workload_name(name, ROUTER_SUFFIX), api.namespace,
                 what=f"reading the router config of {name}")
    if cm is None:
        return None
    try:
        return str(json.loads((cm.data or {})[km.ROUTER_CONFIG_KEY])["stable"])
    except (KeyError, ValueError, TypeError):
        return None


def admin_token(backend: KubernetesBackend, name: str) -> str | None:
    api = backend.api
    secret = api.get(api.core().read_namespaced_secret, workload_name(name, ROUTER_SUFFIX) + "-admin",
                     api.namespace, what=f"reading the router token of {name}")
    if secret is None or not (secret.data or {}).get(km.ROUTER_TOKEN_KEY):
        return None
    return base64.b64decode(secret.data[km.ROUTER_TOKEN_KEY]).decode()


def router_admin(backend: KubernetesBackend, name: str) -> tuple[str, str] | None:
    """(admin URL, token): the router behind Service NAME's NodePort; None when the deployment has no router."""
    check_deployment_name(name)
    api = backend.api
    svc = api.get(api.core().read_namespaced_service, name, api.namespace, what=f"reading Service {name}")
    if svc is None or (svc.spec.selector or {}).get(km.LABEL_WORKLOAD) != workload_name(name, ROUTER_SUFFIX):
        return None
    token = admin_token(backend, name)
    from mlops_desktop.deploy.kube_status import endpoints

    url = next((e.url for e in endpoints(backend, name) if e.role == "router"), None)
    if token is None or url is None:
        return None
    return url, token


def _ensure_token(backend: KubernetesBackend, name: str) -> None:
    if admin_token(backend, name) is not None:
        return
    api = backend.api
    api.call(api.core().create_namespaced_secret, api.namespace, km.router_secret(name, backend.new_admin_token()),
             what=f"creating the router token of {name}")


def apply_router(backend: KubernetesBackend, spec: DeploymentSpec, revision: Revision, plan: RouterPlan,
                 deadline_s: float, progress: ProgressFn | None) -> RolloutResult:
    t0 = time.monotonic()
    api = backend.api
    name = check_deployment_name(spec.name)
    pull = backend.target.option("pull_secret")
    events: list[str] = []
    puts: list[tuple[str, ko.Put]] = []
    created: list[str] = []

    def step(fraction: float, text: str) -> None:
        events.append(text)
        if progress is not None:
            progress(fraction, text)

    ko.ensure_namespace(api)
    if plan.stable not in {a.arm for a in plan.arms}:
        from mlops_desktop.errors import UsageError

        raise UsageError(f"the router's stable arm {plan.stable!r} is none of its arms")
    addresses: dict[str, list[str]] = {}
    n = len(plan.arms) + 1
    for i, arm in enumerate(plan.arms):
        arm_spec = spec.with_(model=arm.model, version=arm.version, replicas=arm.replicas)
        manifest = km.model_deployment(arm_spec, arm.image, revision.number, arm=arm.arm, pull_secret=pull,
                                       deadline_s=deadline_s)
        put = ko.put_deployment(api, manifest)
        workload = manifest["metadata"]["name"]
        puts.append((workload, put))
        if put.action == "created":
            created.append(workload)
        step(0.05 + 0.8 * i / n, f"{put.action} arm {arm.arm}: Deployment {workload} ({arm.replicas} x {arm.image})")
        svc = ko.put_service(api, km.service(name, workload, spec.port))
        addresses[arm.arm] = [f"{svc.spec.cluster_ip}:{spec.port}"]
    config = km.router_config(name, plan, addresses)
    _ensure_token(backend, name)
    old_config = ko.put_configmap(api, km.router_configmap(name, config))
    router_manifest = km.router_deployment(name, plan, revision.number, config, pull_secret=pull,
                                           deadline_s=deadline_s)
    router_put = ko.put_deployment(api, router_manifest)
    router = router_manifest["metadata"]["name"]
    puts.append((router, router_put))
    if router_put.action == "created":
        created.append(router)
    step(0.05 + 0.8 * (n - 1) / n, f"{router_put.action} the router {router} "
                                   f"({', '.join(f'{a.arm}={a.weight:g}' for a in plan.arms)})")
    deadline_at = t0 + deadline_s
    for i, (workload, _put) in enumerate(puts):
        port: int | str = plan.port if workload == router else spec.port
        seen = kr.watch(api, workload, deadline_at, port=port, progress=progress, start=0.1 + 0.8 * i / n,
                        span=0.8 / n)
        events.extend(seen.events)
        if not seen.ok:
            seen.detail = f"{workload}: {seen.detail}"
            result = backend._roll_back(puts, seen, events, t0)
            if old_config is not None:
                ko.put_configmap(api, {**km.router_configmap(name, config), "data": old_config})
            only = {f"{kind}/{w}" for w in created for kind in ("deployment", "service")}
            if router in created:  # there was no router before: its config and token go with it
                only |= {f"configmap/{router}", f"secret/{router}-admin"}
            gone = ko.delete_owned(api, name, only=only)
            if gone:
                events.append("removed what this rollout created: " + ", ".join(gone))
            return result
    svc = ko.put_service(api, km.service(name, router, spec.port, name=name, service_type=backend.service_type,
                                         role="router"))
    node_port = svc.spec.ports[0].node_port if svc.spec.ports else None
    step(0.95, f"Service {name} now routes through {router}" + (f" (NodePort {node_port})" if node_port else ""))
    keep = {f"deployment/{w}" for w, _ in puts} | {f"service/{w}" for w, _ in puts if w != router} | {
        f"service/{name}", f"configmap/{router}", f"secret/{router}-admin"}
    gone = ko.delete_owned(api, name, keep=keep)
    if gone:
        step(0.98, "removed what the new plan no longer has: " + ", ".join(gone))
    desired = sum(a.replicas for a in plan.arms)
    detail = f"{len(plan.arms)} arms and the router ready" + backend.wait_service(name, deadline_at, step)
    return backend._result("healthy", detail, desired, desired, events, t0)
