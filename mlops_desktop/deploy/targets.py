"""Deploy targets: add, list, check and remove them (the part of DeploymentService that knows no deployment)."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from mlops_desktop.audit.log import append as audit_append
from mlops_desktop.audit.log import current_actor
from mlops_desktop.deploy import names
from mlops_desktop.deploy.models import TARGET_KINDS, Target, TargetCheck
from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    from mlops_desktop.deploy.backend import Backend
    from mlops_desktop.deploy.store import DeployStore
    from mlops_desktop.workspace import Workspace

_DOCKER_HOST = re.compile(r"^(unix://(/[A-Za-z0-9._/-]+)|(tcp|ssh)://[A-Za-z0-9._@:\[\]-]+(/[A-Za-z0-9._/-]*)?)$")
_KNOWN_OPTIONS = {
    "local": {"bind", "deadline_s", "registry", "labels", "docker_config"},
    "swarm": {"bind", "deadline_s", "registry", "labels", "docker_config", "endpoint_mode", "publish_mode",
              "node_address"},
    "kubernetes": {"bind", "deadline_s", "registry", "labels", "kubeconfig", "service_type", "pull_secret",
                   "node_address"},
}


def check_docker_host(address: object) -> str:
    if not isinstance(address, str) or not _DOCKER_HOST.fullmatch(address):
        raise UsageError(f"invalid Docker host {address!r}",
                         hint="unix:///path/docker.sock, tcp://HOST:PORT or ssh://USER@HOST")
    return address


def check_options(kind: str, options: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(options or {})
    unknown = sorted(set(out) - _KNOWN_OPTIONS[kind])
    if unknown:
        raise UsageError(f"unknown option(s) for a {kind} target: {', '.join(unknown)}",
                         hint="known: " + ", ".join(sorted(_KNOWN_OPTIONS[kind])))
    if "endpoint_mode" in out and out["endpoint_mode"] not in ("dnsrr", "vip"):
        raise UsageError("endpoint_mode must be 'dnsrr' (no IPVS, as here) or 'vip' (clusters with IPVS)")
    if "publish_mode" in out and out["publish_mode"] not in ("host", "ingress"):
        raise UsageError("publish_mode must be 'host' (ports on the node running the task) or 'ingress' (mesh)")
    if "service_type" in out and out["service_type"] not in ("NodePort", "ClusterIP", "LoadBalancer"):
        raise UsageError("service_type must be NodePort, ClusterIP or LoadBalancer")
    if "deadline_s" in out:
        try:
            value = float(out["deadline_s"])
        except (TypeError, ValueError):
            value = -1.0
        if not 1 <= value <= 3600:
            raise UsageError("deadline_s must be a number of seconds from 1 to 3600")
        out["deadline_s"] = value
    for key in ("bind", "node_address"):
        if key in out and not re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", str(out[key])):
            raise UsageError(f"{key} must be a host name or IP address, got {out[key]!r}")
    labels = out.get("labels")
    if labels is not None and (not isinstance(labels, dict) or not all(
            isinstance(k, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,126}", k) and isinstance(v, str)
            and len(v) <= 256 for k, v in labels.items())):
        raise UsageError("labels must map label keys (letters, digits, . _ / -) to text values")
    if "docker_config" in out and not isinstance(out["docker_config"], str):
        raise UsageError("docker_config must be the folder holding Docker's config.json")
    return out


class TargetsMixin:
    ws: Workspace
    store: DeployStore

    def backend(self, target: str | Target) -> Backend:  # pragma: no cover - defined by the service
        raise NotImplementedError

    def add_target(self, name: str, kind: str, *, address: str | None = None, context: str | None = None,
                   namespace: str | None = None, options: dict[str, Any] | None = None) -> Target:
        names.check_target_name(name)
        if kind not in TARGET_KINDS:
            raise UsageError(f"unknown target kind {kind!r}", hint="--local, --swarm DOCKER_HOST or --kubernetes")
        if kind in ("local", "swarm"):
            if address is not None:
                check_docker_host(address)
            elif kind == "swarm":
                raise UsageError("a swarm target needs the manager's DOCKER_HOST", hint="--swarm unix:///run/x.sock")
            if context or namespace:
                raise UsageError("--context and --namespace are for kubernetes targets")
        else:
            context = names.check_context(context) if context else None
            namespace = names.check_namespace(namespace) if namespace else None
        opts = check_options(kind, options)
        if kind == "kubernetes":
            from mlops_desktop.deploy.kube_client import resolve_context

            # the context must exist in the kubeconfig now, not at the first deploy; the namespace defaults to
            # the context's own, as kubectl's does
            found = resolve_context(opts.get("kubeconfig"), context)
            namespace = namespace or names.check_namespace(found.namespace or "default")
        if kind == "swarm":
            opts.setdefault("endpoint_mode", "dnsrr")
            opts.setdefault("publish_mode", "host")
        target = Target(name=name, kind=kind, address=address, context=context, namespace=namespace,  # type: ignore[arg-type]
                        options=opts, created_at=time.time(), created_by=current_actor())
        with self.ws.db.transaction() as conn:
            self.store.insert_target(conn, target)
            audit_append(conn, "deploy.target.add", f"target:{name}", to_value=kind,
                         details={"address": address, "context": context, "namespace": namespace, "options": opts})
        return target

    def targets(self) -> list[Target]:
        return self.store.targets()

    def target(self, name: str) -> Target:
        return self.store.target(names.check_target_name(name))

    def check_target(self, name: str) -> TargetCheck:
        """Reachable (or why not), version and nodes; the result is kept for `targets list`."""
        target = self.target(name)
        check = self.backend(target).check()
        if not check.checked_at:
            check = TargetCheck(check.target, check.reachable, check.version, check.nodes, check.detail, time.time())
        self.store.save_check(check)
        return check

    def last_check(self, name: str) -> TargetCheck | None:
        return self.store.last_check(names.check_target_name(name))

    def remove_target(self, name: str) -> None:
        names.check_target_name(name)
        with self.ws.db.transaction() as conn:
            self.store.delete_target(conn, name)
            audit_append(conn, "deploy.target.remove", f"target:{name}")
