"""What to scrape for a deployment: a generic list of targets (replicas, routers, managed servers) with their roles.

A name resolves, in this order, to
- a deployment of the deploy service (`deploy.service.DeploymentService(ws).endpoints(name)`), when it exists;
- a managed local router (`router start NAME`): the router itself plus every backend of its config, each with its
  arm and version;
- a managed local server (`serve --detach`): that one server.
Monitoring sees only `ScrapeTarget`s, so any engine that can list its endpoints can be monitored.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import MlopsError, NotFoundError, UsageError

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace

ROLES = ("replica", "router", "server")


@dataclass(frozen=True)
class ScrapeTarget:
    url: str                  # base URL; the collector reads url + "/metrics"
    role: str                 # replica | router | server
    version: str = ""
    arm: str = ""
    model: str = ""

    @property
    def name(self) -> str:
        return self.url.split("://", 1)[-1].rstrip("/")

    def labels(self) -> dict[str, str]:
        out = {"target": self.name, "role": self.role}
        if self.version:
            out["version"] = self.version
        if self.arm:
            out["arm"] = self.arm
        return out


@dataclass
class MonitoredDeployment:
    name: str
    kind: str                 # deploy | router | server
    targets: list[ScrapeTarget]
    model: str = ""
    stable: str = ""          # the stable arm (routers) or version
    arms: dict[str, str] = field(default_factory=dict)  # arm -> version
    admin: str = ""           # a managed router's name (its live switches)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "model": self.model, "stable": self.stable, "arms": self.arms,
                "targets": [t.__dict__ | {"name": t.name} for t in self.targets]}


@contextlib.contextmanager
def deploy_service(ws: Workspace) -> Iterator[Any]:
    """The deploy service when it exists (None before/without it), its engine connections closed afterwards."""
    svc = _deploy_service(ws)
    try:
        yield svc
    finally:
        close = getattr(svc, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


def _deploy_service(ws: Workspace) -> Any | None:
    import importlib

    try:
        service = importlib.import_module("mlops_desktop.deploy.service")
    except ImportError:
        return None
    cls = getattr(service, "DeploymentService", None)
    return cls(ws) if cls is not None else None


def resolve(ws: Workspace, name: str) -> MonitoredDeployment:
    """The deployment (or local router / server) called `name`, with its scrape targets now."""
    with deploy_service(ws) as svc:
        found = _from_deploy(svc, name) if svc is not None else None
    if found is not None:
        return found
    from mlops_desktop.serving import manager, router_manager

    with contextlib.suppress(NotFoundError):
        return _from_router(ws, router_manager.get(ws, name))
    with contextlib.suppress(NotFoundError):
        server = manager.get(ws, name)
        return MonitoredDeployment(name, "server", [ScrapeTarget(server.url, "server", server.version,
                                                                 server.version, server.model)],
                                   model=server.model, stable=server.version, arms={server.version: server.version})
    known = known_names(ws)
    raise NotFoundError(f"no deployment, managed router or managed server named {name!r}",
                        hint=("known: " + ", ".join(known)) if known else
                        "deploy a model, or start `router start NAME` / `serve MODEL --detach`")


def _from_deploy(svc: Any, name: str) -> MonitoredDeployment | None:
    """A deployment of the deploy service; None for a name that is none (not found, or not a DNS label)."""
    try:
        info = svc.get(name)
        endpoints = svc.endpoints(name)
    except (NotFoundError, UsageError):
        return None
    model = str(getattr(info, "model", "") or "")
    targets = [ScrapeTarget(str(e.url).rstrip("/"), str(getattr(e, "role", "replica")),
                            str(getattr(e, "version", "") or ""), str(getattr(e, "arm", "") or ""), model)
               for e in endpoints]
    arms = {t.arm: t.version for t in targets if t.arm and t.version}
    router = getattr(info, "router", None)
    stable = str(getattr(router, "stable", "") or "") if router is not None else ""
    return MonitoredDeployment(name, "deploy", targets, model=model,
                               stable=stable or str(getattr(info, "version", "") or ""), arms=arms)


def known_names(ws: Workspace) -> list[str]:
    names: list[str] = []
    with deploy_service(ws) as svc:
        if svc is not None:
            with contextlib.suppress(Exception):
                names += [str(getattr(d, "name", d)) for d in svc.deployments()]
    from mlops_desktop.serving import manager, router_manager

    with contextlib.suppress(MlopsError):
        names += [r.name for r in router_manager.list_routers(ws)]
    with contextlib.suppress(MlopsError):
        names += [s.name for s in manager.list_servers(ws)]
    return sorted(dict.fromkeys(names))


def _from_router(ws: Workspace, r: Any) -> MonitoredDeployment:
    from mlops_desktop.serving import router_config

    config = router_config.load(r.config)
    targets = [ScrapeTarget(r.url, "router")]
    arms: dict[str, str] = {}
    model = ""
    for arm in config.arms:
        version = arm.version or ""
        for b in arm.backends:
            info = _version_of(b.url) if not version or not model else {}
            version = version or str(info.get("version", ""))
            model = model or str(info.get("model", ""))
            targets.append(ScrapeTarget(b.url, "replica", version, arm.name, model))
        arms[arm.name] = version
    return MonitoredDeployment(r.name, "router", targets, model=model, stable=config.stable, arms=arms,
                               admin=r.name)


def _version_of(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url + "/version", timeout=1.0) as resp:  # noqa: S310 - our own backends
            return dict(json.loads(resp.read()))
    except (OSError, ValueError):
        return {}
