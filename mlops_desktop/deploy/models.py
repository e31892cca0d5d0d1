"""The deploy capability's own entities: targets, specs, revisions, status and endpoints (no docker/kubernetes types).

The CLI, the GUI, monitoring and promotion see only these and the state words below, never an engine's objects.
Every entity has `to_dict()` (what `--json` prints) and specs round-trip through `from_dict()` (what the revision
history stores, so a rollback to any revision re-applies exactly what ran then).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

TargetKind = Literal["local", "swarm", "kubernetes"]
TARGET_KINDS: tuple[str, ...] = ("local", "swarm", "kubernetes")

# A revision's outcome: the result of its rollout, and later what became of it.
#   pending      recorded, the rollout is running (or was interrupted before anything was seen)
#   healthy      every new replica answered /v2/health/ready before the deadline (seen, never assumed)
#   failed       the rollout did not become healthy and there was nothing to roll back to
#   rolled_back  it did not become healthy by its deadline; the previous revision was restored automatically
#   reverted     it was healthy, and later the deployment was switched back from it (rollback, or an alert's revert)
#   unknown      the engine could not be reached mid-rollout; re-running the action resumes
Outcome = Literal["pending", "healthy", "failed", "rolled_back", "reverted", "unknown"]
OUTCOMES: tuple[str, ...] = ("pending", "healthy", "failed", "rolled_back", "reverted", "unknown")
FINAL_OUTCOMES: tuple[str, ...] = ("healthy", "failed", "rolled_back", "reverted")

# A deployment's state as last observed (Status.state):
#   progressing  a rollout is running      healthy   ready == desired, every replica answers its readiness check
#   degraded     some replicas not ready   failed    no replica ready although some are desired
#   stopped      scaled to zero            unknown   the engine could not be asked (reason says why)
#   missing      the engine has no such workload (deleted behind our back, or never created)
State = Literal["progressing", "healthy", "degraded", "failed", "stopped", "unknown", "missing"]
STATES: tuple[str, ...] = ("progressing", "healthy", "degraded", "failed", "stopped", "unknown", "missing")

ReplicaHealth = Literal["ready", "starting", "unhealthy", "crashed", "stopped", "unknown"]
EndpointRole = Literal["replica", "router", "admin"]


@dataclass(frozen=True)
class Target:
    """Where deployments run: `local` (containers on a Docker engine), `swarm` (a Swarm manager), `kubernetes`.

    address: DOCKER_HOST for local/swarm (None: the environment's default engine), the API server for kubernetes
    (informational; the kubeconfig decides). context/namespace: kubernetes only. options: per-kind settings, e.g.
    swarm `endpoint_mode` ('dnsrr' here, 'vip' on clusters with IPVS), `publish_mode` ('host' or 'ingress'),
    `network`; kubernetes `kubeconfig`, `service_type`, `pull_secret`; all: `bind` (the host address ports are
    published on, 127.0.0.1 unless asked), `registry_auth` (log in to the image's registry from Docker's config).
    """

    name: str
    kind: TargetKind
    address: str | None = None
    context: str | None = None
    namespace: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    created_by: str = ""

    def option(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TargetCheck:
    """What `targets check` saw: reachable or not (and why), the engine's version, its nodes."""

    target: str
    reachable: bool
    version: str = ""
    nodes: tuple[dict[str, Any], ...] = ()  # {"name", "role", "state", "address"}
    detail: str = ""
    checked_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["nodes"] = [dict(n) for n in self.nodes]
        return d


@dataclass(frozen=True)
class DeploymentSpec:
    """What should run: the model version (resolved; `model_ref` keeps what the user asked for), replicas, resources.

    cpu: cores per replica (None: no limit); memory: bytes per replica (None: no limit); gpus: whole devices;
    env: extra environment for the model server; port: the port the server listens on inside the container.
    """

    name: str
    target: str
    model_ref: str
    model: str = ""
    version: int = 0
    replicas: int = 1
    cpu: float | None = None
    memory: int | None = None
    gpus: int = 0
    env: dict[str, str] = field(default_factory=dict)
    port: int = 8080

    def with_(self, **changes: Any) -> DeploymentSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> DeploymentSpec:
        known = {f: doc[f] for f in cls.__dataclass_fields__ if f in doc}
        known["env"] = dict(known.get("env") or {})
        return cls(**known)


@dataclass(frozen=True)
class ArmPlan:
    """One arm behind the router: a per-version workload `<deployment>-<arm>` and its share of the traffic."""

    arm: str            # 'v3' (names.arm_name)
    model: str
    version: int
    image: str
    weight: float       # 0 for a shadow-only arm
    replicas: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RouterPlan:
    """The router in front of the arms (A/B split and/or shadow). The admin token is a secret: never stored in the
    database; backends keep it in an engine secret and hand it back through `admin_token()`."""

    arms: tuple[ArmPlan, ...]
    stable: str                        # the primary arm: readiness and the kill switch's target
    sticky_header: str | None = None
    shadow_arm: str | None = None
    shadow_percent: float = 0.0
    image: str = ""                    # the router runs from the stable arm's image (same image family)
    port: int = 8090

    def arm(self, name: str) -> ArmPlan:
        for a in self.arms:
            if a.arm == name:
                return a
        raise KeyError(name)

    @property
    def weights(self) -> dict[str, float]:
        return {a.arm: a.weight for a in self.arms}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arms"] = [a.to_dict() for a in self.arms]
        return d

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> RouterPlan | None:
        if not doc:
            return None
        arms = tuple(ArmPlan(**a) for a in doc.get("arms") or ())
        rest = {k: v for k, v in doc.items() if k != "arms" and k in cls.__dataclass_fields__}
        return cls(arms=arms, **rest)


@dataclass(frozen=True)
class Revision:
    """One entry of a deployment's append-only history: which version and image, who, when, why, and the outcome.

    `alerting` holds the id of an alert that fired while this revision served (monitoring's flag_alerting): such a
    revision is never a revert's destination. `spec` and `router` are exactly what was applied.
    """

    deployment: str
    number: int
    model: str
    version: int
    image: str
    actor: str
    at: float
    reason: str
    outcome: Outcome
    detail: str = ""
    alerting: str | None = None
    action: str = "create"         # create | update | rollback | revert | scale | split | shadow | resume
    spec: DeploymentSpec | None = None
    router: RouterPlan | None = None
    finished_at: float | None = None
    rolled_back_to: int | None = None   # for rolled_back/rollback: the revision that serves instead

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict() if self.spec else None
        d["router"] = self.router.to_dict() if self.router else None
        return d


@dataclass(frozen=True)
class ReplicaStatus:
    id: str
    health: ReplicaHealth
    detail: str = ""
    version: str = ""          # the model version it serves ('' when not known)
    arm: str = ""              # its router arm, '' without a router; 'router' for the router's own replicas
    node: str = ""
    address: str = ""          # host:port our readiness check reached it at
    started_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Status:
    """Desired vs ready replicas, per-replica health, our state word and the reason for it."""

    desired: int
    ready: int
    replicas: tuple[ReplicaStatus, ...] = ()
    state: State = "unknown"
    reason: str = ""
    events: tuple[str, ...] = ()   # the engine's recent events, newest last, in words
    observed_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["replicas"] = [r.to_dict() for r in self.replicas]
        d["events"] = list(self.events)
        return d


@dataclass(frozen=True)
class Endpoint:
    """Where a deployment answers: each replica, and the router when there is one (`arm`: the replica's arm)."""

    url: str
    role: EndpointRole
    version: str = ""
    arm: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RolloutResult:
    """What a backend's apply/undo saw. `outcome` is one of healthy | rolled_back | failed | unknown; `healthy`
    only when every new replica was seen ready. `events` are the steps in words (for the rollout view)."""

    outcome: Outcome
    detail: str = ""
    ready: int = 0
    desired: int = 0
    events: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["events"] = list(self.events)
        return d


@dataclass(frozen=True)
class Deployment:
    """A deployment as the workspace knows it: its current spec, router plan and the revision serving now."""

    name: str
    target: str
    spec: DeploymentSpec
    current_revision: int
    state: str
    reason: str
    router: RouterPlan | None
    created_at: float
    updated_at: float
    created_by: str = ""
    model: str = ""
    version: int = 0
    image: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        d["router"] = self.router.to_dict() if self.router else None
        return d
