"""The Kubernetes deploy target: Deployments + Services through the official client, rollouts we watch and undo.

One deployment `NAME` is, in the target's namespace:
- without a router: Deployment `NAME` (the model server, readiness probe on /v2/health/ready) and Service `NAME`;
- with a router (A/B, shadow): Deployment + ClusterIP Service `NAME-vN` per version, Deployment `NAME-router`
  (its config in ConfigMap `NAME-router`, its admin token in Secret `NAME-router-admin`), and Service `NAME`
  selecting the router. Service `NAME` keeps its NodePort when the deployment switches between the two, so the
  URL a client was given stays valid.
A rollout is healthy only when every pod of the new ReplicaSet was seen ready (kube_rollout.watch); otherwise the
previous ReplicaSet's template is restored as `kubectl rollout undo` does and the result is `rolled_back`.

Target options: `kubeconfig` (default $KUBECONFIG or ~/.kube/config), `service_type` (NodePort, the default, so
this machine reaches the model; ClusterIP for in-cluster clients only), `pull_secret` (a dockerconfigjson Secret in
the namespace for the registry), `node_address` (where NodePorts are reached; default the first Ready node's
InternalIP). LoadBalancer Services are reached at their load balancer's address when it has one, else at the
NodePort every LoadBalancer Service also has.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlops_desktop.deploy import kube_manifests as km
from mlops_desktop.deploy import kube_objects as ko
from mlops_desktop.deploy import kube_rollout as kr
from mlops_desktop.deploy.backend import ROUTER_SUFFIX, EngineUnreachable, ProgressFn
from mlops_desktop.deploy.names import check_deployment_name, workload_name
from mlops_desktop.errors import MlopsError, UsageError

if TYPE_CHECKING:
    from mlops_desktop.deploy.kube_client import KubeApi
    from mlops_desktop.deploy.models import (
        DeploymentSpec,
        Endpoint,
        Revision,
        RolloutResult,
        RouterPlan,
        Status,
        Target,
        TargetCheck,
    )

UNDO_WAIT_S = 60.0  # how long a restored template may take to be ready again (its old pods usually still run)
# Pods ready is not yet "the URL answers": kube-proxy programs a new NodePort a moment later (about 1 s seen here).
SERVICE_WAIT_MIN_S = 5.0
SERVICE_WAIT_MAX_S = 30.0


class KubernetesBackend:
    """Backend protocol (deploy/backend.py) over one kubeconfig context and namespace."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self._api: KubeApi | None = None
        self._node_address: str | None = target.option("node_address")

    # ------------------------------------------------------------------ connection
    @property
    def api(self) -> KubeApi:
        if self._api is None:
            from mlops_desktop.deploy.kube_client import KubeApi
            from mlops_desktop.deploy.names import check_namespace

            namespace = check_namespace(self.target.namespace) if self.target.namespace else None
            self._api = KubeApi(self.target.option("kubeconfig"), self.target.context, namespace)
        return self._api

    @property
    def namespace(self) -> str:
        return self.api.namespace

    def close(self) -> None:
        if self._api is not None:
            self._api.close()

    @property
    def service_type(self) -> str:
        kind = str(self.target.option("service_type", "NodePort"))
        if kind not in ("NodePort", "ClusterIP", "LoadBalancer"):
            raise UsageError(f"target {self.target.name}: service_type {kind!r} is not NodePort, ClusterIP or "
                             "LoadBalancer")
        return kind

    def node_address(self) -> str:
        if self._node_address:
            return self._node_address
        nodes = self.api.call(self.api.core().list_node, what="listing the nodes").items
        for node in sorted(nodes, key=lambda n: not _node_ready(n)):
            for addr in node.status.addresses or []:
                if addr.type in ("InternalIP", "ExternalIP"):
                    self._node_address = str(addr.address)
                    return self._node_address
        from urllib.parse import urlparse

        self._node_address = urlparse(self.api.server).hostname or "127.0.0.1"
        return self._node_address

    # ------------------------------------------------------------------ check
    def check(self) -> TargetCheck:
        from mlops_desktop.deploy.models import TargetCheck

        now = time.time()
        try:
            api = self.api
            version = api.call(api.version_api().get_code, what="asking the server version").git_version
            nodes = api.call(api.core().list_node, what="listing the nodes").items
        except EngineUnreachable as exc:
            return TargetCheck(self.target.name, False, detail=str(exc), checked_at=now)
        except MlopsError as exc:
            return TargetCheck(self.target.name, False, detail=exc.message, checked_at=now)
        out = []
        for node in nodes:
            roles = sorted(k.split("/", 1)[1] for k in (node.metadata.labels or {})
                           if k.startswith("node-role.kubernetes.io/")) or ["worker"]
            addr = next((a.address for a in node.status.addresses or [] if a.type == "InternalIP"), "")
            out.append({"name": node.metadata.name, "role": ",".join(roles),
                        "state": "ready" if _node_ready(node) else "not ready", "address": addr})
        ready = sum(1 for n in out if n["state"] == "ready")
        detail = f"context {api.context.name}, namespace {api.namespace}, {ready}/{len(out)} nodes ready"
        try:
            if api.get(api.core().read_namespace, api.namespace, what="reading the namespace") is None:
                detail += f" (namespace {api.namespace} does not exist yet: the first deploy creates it)"
        except MlopsError:
            pass  # a user allowed one namespace may not read namespaces
        if not out:
            detail += "; no nodes: nothing can run"
        return TargetCheck(self.target.name, True, version=str(version), nodes=tuple(out), detail=detail,
                           checked_at=now)

    # ------------------------------------------------------------------ rollouts
    def apply(self, spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
              deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        check_deployment_name(spec.name)
        if router is not None:
            from mlops_desktop.deploy.kube_router import apply_router

            return apply_router(self, spec, revision, router, deadline_s, progress)
        return self._apply_single(spec, revision, image, deadline_s, progress)

    def undo(self, name: str, to_spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
             deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        """Any earlier revision: its stored spec is applied again (gated, and undone itself if it fails)."""
        if to_spec.name != name:
            raise UsageError(f"the spec to restore belongs to {to_spec.name!r}, not {name!r}")
        return self.apply(to_spec, revision, image, router, deadline_s, progress)

    def _apply_single(self, spec: DeploymentSpec, revision: Revision, image: str, deadline_s: float,
                      progress: ProgressFn | None) -> RolloutResult:
        t0 = time.monotonic()
        api = self.api
        name = spec.name
        events: list[str] = []

        def step(fraction: float, text: str) -> None:
            events.append(text)
            if progress is not None:
                progress(fraction, text)

        ko.ensure_namespace(api)
        manifest = km.model_deployment(spec, image, revision.number, pull_secret=self.target.option("pull_secret"),
                                       deadline_s=deadline_s)
        put = ko.put_deployment(api, manifest)
        step(0.1, {"created": f"created Deployment {name} ({spec.replicas} replicas of {image})",
                   "updated": f"updated Deployment {name} to {image} ({spec.replicas} replicas)",
                   "unchanged": f"Deployment {name} already has this spec: waiting for it (resume)"}[put.action])
        service = km.service(name, name, spec.port, service_type=self.service_type)
        current = api.get(api.core().read_namespaced_service, name, api.namespace, what=f"reading Service {name}")
        switching = current is not None and (current.spec.selector or {}).get(km.LABEL_WORKLOAD) != name
        if not switching:  # from a router back to one workload: Service NAME switches only once it is ready
            self._say_service(step, ko.put_service(api, service))
        seen = kr.watch(api, name, t0 + deadline_s, port=spec.port, progress=progress, start=0.15, span=0.8)
        events.extend(seen.events)
        if seen.ok:
            if switching:
                self._say_service(step, ko.put_service(api, service))
            gone = ko.delete_owned(api, name, keep={f"deployment/{name}", f"service/{name}"})
            if gone:
                step(0.97, "removed the router and arms: " + ", ".join(gone))
            detail = seen.detail + self.wait_service(name, t0 + deadline_s, step)
            return self._result("healthy", detail, seen.ready, seen.desired, events, t0)
        return self._roll_back([(name, put)], seen, events, t0)

    def wait_service(self, name: str, until: float, step: Any) -> str:
        """Wait until the Service URL this machine is given answers /v2/health/ready; '' once it does, else a note.

        Bounded by the rollout's deadline (at least SERVICE_WAIT_MIN_S, at most SERVICE_WAIT_MAX_S). The pods are
        ready either way: an unreachable NodePort (a firewall, a node address this machine cannot route to) is
        reported on the result, not rolled back.
        """
        from mlops_desktop.deploy.kube_status import endpoints

        if self.service_type == "ClusterIP":
            return ""  # reached from inside the cluster only: nothing this machine can check
        urls = [e.url for e in endpoints(self, name) if e.role in ("replica", "router")]
        if not urls:
            return "; the Service has no address this machine can reach yet"
        url = urls[0]
        t0 = time.monotonic()
        stop = t0 + min(SERVICE_WAIT_MAX_S, max(SERVICE_WAIT_MIN_S, until - t0))
        while True:
            if _answers(url + "/v2/health/ready"):
                step(0.99, f"{url} answers ({time.monotonic() - t0:.1f} s after the pods were ready)")
                return ""
            if time.monotonic() >= stop:
                step(0.99, f"{url} did not answer /v2/health/ready within {stop - t0:.0f} s")
                return f"; the pods are ready but {url} did not answer within {stop - t0:.0f} s"
            time.sleep(0.2)

    @staticmethod
    def _say_service(step: Any, svc: Any) -> None:
        ports = svc.spec.ports if svc is not None and getattr(svc, "spec", None) is not None else None
        if ports and ports[0].node_port:
            step(0.15, f"Service {svc.metadata.name} on NodePort {ports[0].node_port}")

    def _roll_back(self, puts: list[tuple[str, ko.Put]], seen: kr.RolloutWatch, events: list[str],
                   t0: float) -> RolloutResult:
        """Restore every workload this rollout changed; a workload it created is scaled to zero (nothing to restore)."""
        api = self.api
        restored: list[str] = []
        failed_only = True
        for name, put in puts:
            if put.action == "unchanged" and put.previous_hash == "":
                continue
            rev = kr.undo(api, name)
            if rev is None:
                ko.set_replicas(api, name, 0)
                events.append(f"Deployment {name} had no earlier revision: scaled to 0")
                continue
            failed_only = False
            if put.previous_replicas is not None:
                ko.set_replicas(api, name, put.previous_replicas)
            events.append(f"restored revision {rev} of Deployment {name} (as `kubectl rollout undo`)")
            again = kr.watch(api, name, time.monotonic() + UNDO_WAIT_S)
            restored.append(f"{name}: {again.detail}" if again.ok else f"{name}: restored but {again.detail}")
        detail = seen.detail + ("; rolled back: " + "; ".join(restored) if restored else "")
        return self._result("failed" if failed_only else "rolled_back", detail, seen.ready, seen.desired, events, t0)

    def _result(self, outcome: str, detail: str, ready: int, desired: int, events: list[str],
                t0: float) -> RolloutResult:
        from mlops_desktop.deploy.models import RolloutResult

        return RolloutResult(outcome=outcome, detail=detail, ready=ready, desired=desired,  # type: ignore[arg-type]
                             events=tuple(events), seconds=round(time.monotonic() - t0, 3))

    # ------------------------------------------------------------------ day-2
    def primary_workload(self, name: str) -> str:
        """The workload `scale` acts on: the deployment itself, or with a router its stable arm."""
        check_deployment_name(name)
        api = self.api
        apps = api.apps()
        if api.get(apps.read_namespaced_deployment, name, api.namespace, what=f"reading Deployment {name}"):
            return name
        from mlops_desktop.deploy.kube_router import router_stable

        stable = router_stable(self, name)
        if stable is None:
            from mlops_desktop.errors import NotFoundError

            raise NotFoundError(f"no deployment {name!r} in namespace {api.namespace} of target {self.target.name}")
        return workload_name(name, stable)

    def scale(self, name: str, replicas: int) -> None:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise UsageError(f"invalid replica count {replicas!r}", hint="a whole number from 0")
        ko.set_replicas(self.api, self.primary_workload(name), replicas)

    def restart(self, name: str) -> None:
        """A rolling restart of every workload of the deployment, as `kubectl rollout restart` does it."""
        import datetime as dt

        check_deployment_name(name)
        api = self.api
        apps = api.apps()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        deps = api.call(apps.list_namespaced_deployment, api.namespace,
                        label_selector=f"{km.LABEL_DEPLOYMENT}={name}", what=f"listing the Deployments of {name}")
        if not deps.items:
            from mlops_desktop.errors import NotFoundError

            raise NotFoundError(f"no deployment {name!r} in namespace {api.namespace} of target {self.target.name}")
        for dep in deps.items:
            api.call(apps.patch_namespaced_deployment, dep.metadata.name, api.namespace,
                     {"spec": {"template": {"metadata": {"annotations": {km.ANN_RESTARTED: stamp}}}}},
                     what=f"restarting Deployment {dep.metadata.name}")

    def delete(self, name: str) -> None:
        check_deployment_name(name)
        ko.delete_owned(self.api, name)

    # ------------------------------------------------------------------ observing (kube_status.py)
    def status(self, name: str) -> Status:
        from mlops_desktop.deploy.kube_status import status

        return status(self, name)

    def logs(self, name: str, follow: bool = False, since: float | None = None) -> Iterator[str]:
        from mlops_desktop.deploy.kube_status import logs

        return logs(self, name, follow=follow, since=since)

    def endpoints(self, name: str) -> list[Endpoint]:
        from mlops_desktop.deploy.kube_status import endpoints

        return endpoints(self, name)

    def router_admin(self, name: str) -> tuple[str, str] | None:
        from mlops_desktop.deploy.kube_router import router_admin

        return router_admin(self, name)

    def new_admin_token(self) -> str:
        return secrets.token_urlsafe(32)

    def pods(self, name: str) -> list[Any]:
        api = self.api
        return list(api.call(api.core().list_namespaced_pod, api.namespace,
                             label_selector=f"{km.LABEL_DEPLOYMENT}={name}", what=f"listing the pods of {name}").items)

    def router_name(self, name: str) -> str:
        return workload_name(name, ROUTER_SUFFIX)


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:  # noqa: S310 - our own Service's http URL
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _node_ready(node: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
