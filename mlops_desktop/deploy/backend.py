"""The one interface every deploy target implements (local Docker, Swarm, Kubernetes), and the factory that picks one.

A backend drives ONE engine towards what the service asks and reports what it saw, in our own types (models.py):
it never returns a docker or kubernetes object, and it never writes the workspace database (the service records).
Rules every implementation keeps:
- Every engine call has a timeout; an engine that cannot be reached raises `EngineUnreachable` (the service records
  `unknown` with the reason), never hangs.
- `apply` gates the rollout on OUR readiness check (`GET /v2/health/ready` on each new replica, or the router):
  `healthy` only when every new replica was seen ready before `deadline_s`; otherwise it restores the previous spec
  itself and returns `rolled_back` (or `failed` when there was none). Re-running `apply` with the same arguments
  resumes: it adopts what already runs and waits again.
- Object names come from `names.workload_name` (checked DNS labels), labels carry `mlops.deployment`,
  `mlops.revision`, `mlops.arm`, `mlops.version`, so `status`, `logs` and `delete` find everything a deployment owns.
- With a `RouterPlan`, each arm is its own workload `<name>-<arm>` and the router `<name>-router` runs in front
  (its config lists the arms' replicas); without one, the deployment is the single workload `<name>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mlops_desktop.errors import MlopsError, UsageError

if TYPE_CHECKING:
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

# Called by a backend while it rolls out: (fraction 0..1, what it is doing in words). May raise Cancelled.
ProgressFn = Callable[[float, str], None]

# Where a deployment's replicas are reached FROM THIS MACHINE for the readiness check (Target.option "bind").
DEFAULT_BIND = "127.0.0.1"
READY_PATH = "/v2/health/ready"
ROUTER_SUFFIX = "router"


class EngineUnreachable(MlopsError):  # noqa: N818 - a condition, named as the user sees it
    """The target's engine did not answer (stopped, network down, timeout): the state is unknown, not failed."""

    exit_code = 1


class RolloutFailed(MlopsError):
    """A rollout the backend could not even start (bad image reference, quota, engine refused the spec)."""


@runtime_checkable
class Backend(Protocol):
    """One deploy target. Implementations: local.LocalBackend, swarm.SwarmBackend, kubernetes.KubernetesBackend."""

    target: Target

    def check(self) -> TargetCheck:
        """Reachable or not (never raises for an unreachable engine: says why), engine version, nodes."""
        ...

    def apply(self, spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
              deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        """Create or update the deployment to `spec` running `image` (and the router/arms of `router`), gated by the
        readiness check; not ready by `deadline_s` after it started -> restore the previous spec, `rolled_back`.
        Raises EngineUnreachable when the engine stops answering (the service records `unknown`)."""
        ...

    def status(self, name: str) -> Status:
        """Desired/ready replicas and each replica's health as OUR readiness check sees it now; `missing` when the
        engine has no such deployment. Raises EngineUnreachable."""
        ...

    def scale(self, name: str, replicas: int) -> None:
        """Set the primary workload's replica count (with a router: the stable arm's)."""
        ...

    def restart(self, name: str) -> None:
        """Replace every replica with a fresh one of the same spec (a rolling restart)."""
        ...

    def logs(self, name: str, follow: bool = False, since: float | None = None) -> Iterator[str]:
        """Lines of every replica (prefixed by replica id), from `since` (unix time) on; `follow` keeps streaming
        until the iterator is closed or the deployment goes away."""
        ...

    def endpoints(self, name: str) -> list[Endpoint]:
        """URLs reachable from this machine: each replica, and the router (role 'router') when there is one."""
        ...

    def router_admin(self, name: str) -> tuple[str, str] | None:
        """(admin URL, admin token) of the deployment's router, or None without a router. The token lives in the
        engine (a secret), never in our database."""
        ...

    def delete(self, name: str) -> None:
        """Remove everything the deployment owns on the engine (workloads, router, secrets, configs); idempotent."""
        ...

    def undo(self, name: str, to_spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
             deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        """Go back to `to_spec` (an earlier revision, not only the last one): the engine's own rollback when it is the
        previous spec, else an apply of it. Gated by readiness like apply."""
        ...


def make_backend(target: Target) -> Backend:
    """The backend for a target's kind; its engine library (docker, kubernetes) is imported only here."""
    if target.kind == "local":
        from mlops_desktop.deploy.local import LocalBackend

        return LocalBackend(target)
    if target.kind == "swarm":
        from mlops_desktop.deploy.swarm import SwarmBackend

        return SwarmBackend(target)
    if target.kind == "kubernetes":
        try:
            from mlops_desktop.deploy.kubernetes import KubernetesBackend
        except ModuleNotFoundError as exc:
            if exc.name == "mlops_desktop.deploy.kubernetes":
                raise UsageError("this build has no Kubernetes backend yet") from None
            raise
        return KubernetesBackend(target)  # type: ignore[no-any-return, unused-ignore]
    raise UsageError(f"unknown target kind {target.kind!r}", hint="local, swarm or kubernetes")
