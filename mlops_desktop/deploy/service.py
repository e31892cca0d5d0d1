"""DeploymentService: every deployment action (CLI, GUI, monitoring, promotion call this one), recorded and audited.

Reconcile, don't fire and forget: an action first records the revision it wants (outcome `pending`) and the audit
event, then drives the target's backend towards it, then records what the backend SAW (`healthy` only when every new
replica answered its readiness check). An engine that stops answering leaves the revision `unknown` with the
reason; running the same action again (or `resume`) continues that revision instead of starting another.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlops_desktop.audit.log import append as audit_append
from mlops_desktop.audit.log import current_actor
from mlops_desktop.deploy import names
from mlops_desktop.deploy.backend import Backend, EngineUnreachable, make_backend
from mlops_desktop.deploy.models import (
    ArmPlan,
    Deployment,
    DeploymentSpec,
    Endpoint,
    Revision,
    RolloutResult,
    RouterPlan,
    Status,
    Target,
)
from mlops_desktop.deploy.store import DeployStore
from mlops_desktop.deploy.targets import TargetsMixin
from mlops_desktop.errors import Cancelled, MlopsError, UsageError

if TYPE_CHECKING:
    from mlops_desktop.deploy.images import ImageSource
    from mlops_desktop.progress import Progress
    from mlops_desktop.registry.entities import ModelVersion
    from mlops_desktop.workspace import Workspace

DEFAULT_DEADLINE_S = 60.0
_UNSET: Any = object()


class DeploymentService(TargetsMixin):
    """Deployments of one workspace. `images` says where images come from (default: the containers capability);
    `backends` may hold a backend per target name (tests reuse one engine connection)."""

    def __init__(self, ws: Workspace, *, images: ImageSource | None = None,
                 backends: dict[str, Backend] | None = None) -> None:
        self.ws = ws
        self.store = DeployStore(ws.db)
        if images is None:
            from mlops_desktop.deploy.images import ContainersImages

            images = ContainersImages(ws)
        self.images = images
        self._backends: dict[str, Backend] = dict(backends or {})

    # -- plumbing ----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the engine connections the backends opened (the GUI calls it when a view or workspace goes)."""
        backends, self._backends = list(self._backends.values()), {}
        for backend in backends:
            close = getattr(backend, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    def __enter__(self) -> DeploymentService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def backend(self, target: str | Target) -> Backend:
        t = self.store.target(target) if isinstance(target, str) else target
        if t.name not in self._backends:
            self._backends[t.name] = make_backend(t)
        return self._backends[t.name]

    def _resolve(self, ref: str) -> ModelVersion:
        from mlops_desktop import registry

        names.check_model_ref(ref)
        return registry.resolve(self.ws, ref)

    def _image(self, version: ModelVersion, target: Target, progress: Progress | None) -> str:
        fn = progress.sub(0.0, 0.3).update if progress is not None else None
        return self.images.image_for(version, target, fn)

    def _router_image(self, dep: Deployment, target: Target, fallback: str, progress: Progress | None) -> str:
        if dep.router is not None and dep.router.image:
            return dep.router.image
        pick = getattr(self.images, "router_image", None)
        fn = progress.sub(0.0, 0.3).update if progress is not None else None
        return (pick(target, fn) if pick is not None else None) or fallback

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """One action at a time per deployment, across processes (GUI, CLI, monitoring's revert): an advisory file
        lock in the workspace, released by the OS if the process dies."""
        import fcntl

        folder = self.ws.root / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"deploy-{names.check_deployment_name(name)}.lock", "a+") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise MlopsError(f"another action on deployment {name!r} is running ({holder})",
                                 hint="wait for it to finish, or cancel it where it runs") from None
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}, since {time.strftime('%H:%M:%S')}")
            fh.flush()
            try:
                yield
            finally:
                fh.truncate(0)
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _audit(self, kind: str, name: str, *, frm: Any = None, to: Any = None, reason: str = "",
               details: dict[str, Any] | None = None) -> None:
        with self.ws.db.transaction() as conn:
            audit_append(conn, kind, f"deployment:{name}", from_value=frm, to_value=to, reason=reason,
                         details=details)

    # -- reading -----------------------------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        return self.store.deployment(names.check_deployment_name(name))

    def deployments(self) -> list[Deployment]:
        return self.store.deployments()

    def history(self, name: str) -> list[Revision]:
        self.get(name)
        return self.store.revisions(name)

    def events(self, name: str, *, revision: int | None = None, after: int = 0) -> list[dict[str, Any]]:
        return self.store.events(names.check_deployment_name(name), revision=revision, after=after)

    def status(self, name: str) -> Status:
        """What the engine shows now, with per-replica readiness; `unknown` with the reason when it cannot say."""
        dep = self.get(name)
        try:
            status = self.backend(dep.target).status(name)
        except EngineUnreachable as exc:
            status = Status(desired=dep.spec.replicas, ready=0, state="unknown", reason=exc.message,
                            observed_at=time.time())
        if dep.state != status.state or dep.reason != status.reason:
            busy = dep.state == "progressing" and status.state != "unknown"
            if not busy:
                self.store.set_state(name, status.state, status.reason)
        return status

    def logs(self, name: str, *, follow: bool = False, since: float | None = None) -> Iterator[str]:
        dep = self.get(name)
        return self.backend(dep.target).logs(name, follow=follow, since=since)

    def endpoints(self, name: str) -> list[Endpoint]:
        dep = self.get(name)
        return self.backend(dep.target).endpoints(name)

    # -- the rollout -------------------------------------------------------------------------------------------
    def _pending_revision(self, name: str) -> Revision | None:
        """The last revision when it never finished (pending/unknown): what re-running an action continues."""
        revs = self.store.revisions(name)
        if revs and revs[-1].outcome in ("pending", "unknown"):
            return revs[-1]
        return None

    def _rollout(self, name: str, spec: DeploymentSpec, version: ModelVersion, image: str,
                 router: RouterPlan | None, **kwargs: Any) -> Revision:
        with self.exclusive(name):
            return self._rollout_locked(name, spec, version, image, router, **kwargs)

    def _rollout_locked(self, name: str, spec: DeploymentSpec, version: ModelVersion, image: str,
                        router: RouterPlan | None, *, action: str, reason: str, deadline_s: float | None,
                        progress: Progress | None, to_revision: int | None = None,
                        details: dict[str, Any] | None = None) -> Revision:
        dep = self.store.deployment(name)
        target = self.store.target(dep.target)
        actor = current_actor()
        deadline = float(deadline_s or target.option("deadline_s") or DEFAULT_DEADLINE_S)
        pending = self._pending_revision(name)
        with self.ws.db.transaction() as conn:
            dep_id = self.store.deployment_id(conn, name)
            if pending is not None and pending.spec == spec and pending.image == image and pending.router == router:
                rev = pending  # resume the interrupted revision: same number, same spec
                kind = "deploy.resume"
            else:
                if pending is not None:  # superseded by a different request: it never became healthy
                    self.store.finish_revision(conn, name, pending.number, "failed",
                                               (pending.detail + "; " if pending.detail else "")
                                               + "superseded by a newer revision before it was seen healthy")
                rev = Revision(deployment=name, number=self.store.next_number(conn, dep_id), model=version.name,
                               version=int(version.version), image=image, actor=actor, at=time.time(),
                               reason=reason, outcome="pending", action=action, spec=spec, router=router)
                self.store.insert_revision(conn, dep_id, rev)
                kind = f"deploy.{action}"
            self.store.set_state(name, "progressing", f"revision {rev.number}: {action}", conn)
            audit_append(conn, kind, f"deployment:{name}", from_value=dep.current_revision or None,
                         to_value=rev.number, reason=reason,
                         details={"model": rev.ref, "image": image, "target": target.name,
                                  "replicas": spec.replicas, **(details or {}),
                                  **({"router": router.weights} if router else {})})
        self.store.add_event(name, rev.number, "rollout", f"revision {rev.number} ({rev.ref}) rolling out on "
                             f"{target.name}, deadline {deadline:g} s")
        backend = self.backend(target)

        def report(fraction: float, message: str) -> None:
            if progress is not None:
                progress.update(0.3 + 0.7 * fraction, message)

        started = time.monotonic()
        try:
            if to_revision is not None:
                result = backend.undo(name, spec, rev, image, router, deadline, report)
            else:
                result = backend.apply(spec, rev, image, router, deadline, report)
        except EngineUnreachable as exc:
            result = RolloutResult("unknown", exc.message, seconds=time.monotonic() - started)
        except Cancelled:
            self._finish(name, rev, dep.current_revision,
                         RolloutResult("unknown", "cancelled before the rollout was seen healthy; "
                                       "run the action again to resume", seconds=time.monotonic() - started))
            raise
        except MlopsError as exc:
            result = RolloutResult("failed", exc.message, seconds=time.monotonic() - started)
        return self._finish(name, rev, dep.current_revision, result)

    def _finish(self, name: str, rev: Revision, previous: int, result: RolloutResult) -> Revision:
        for line in result.events:
            self.store.add_event(name, rev.number, "engine", line)
        outcome = result.outcome
        detail = result.detail or {"healthy": f"{result.ready}/{result.desired} replicas ready"}.get(outcome, "")
        with self.ws.db.transaction() as conn:
            if outcome == "healthy":
                assert rev.spec is not None
                self.store.finish_revision(conn, name, rev.number, "healthy", detail)
                if previous and previous != rev.number and rev.action in ("rollback", "revert"):
                    prev = self.store.revision(name, previous)
                    if prev.outcome == "healthy":
                        self.store.finish_revision(conn, name, previous, "reverted",
                                                   f"switched back from it by revision {rev.number}",
                                                   rolled_back_to=rev.number)
                self.store.set_current(conn, name, rev.spec, rev.router, rev.number)
                self.store.set_state(name, "healthy", detail, conn)
            elif outcome == "unknown":
                self.store.finish_revision(conn, name, rev.number, "unknown", detail, final=False)
                self.store.set_state(name, "unknown", detail, conn)
            else:  # rolled_back (the previous revision serves again) or failed (nothing to go back to)
                back = previous or None if outcome == "rolled_back" else None
                self.store.finish_revision(conn, name, rev.number, outcome, detail, rolled_back_to=back)
                state = "healthy" if back else "failed"
                self.store.set_state(name, state, f"revision {rev.number} {outcome.replace('_', ' ')}: {detail}",
                                     conn)
            audit_append(conn, f"deploy.outcome.{outcome}", f"deployment:{name}", from_value="pending",
                         to_value=outcome, reason=detail[:500],
                         details={"revision": rev.number, "seconds": round(result.seconds, 3)})
        self.store.add_event(name, rev.number, "outcome", f"revision {rev.number}: {outcome} {detail}".strip())
        return self.store.revision(name, rev.number)

    # -- actions -----------------------------------------------------------------------------------------------
    def create(self, name: str, target: str, model_ref: str, *, replicas: int = 1, cpu: float | None = None,
               memory: int | str | None = None, gpus: int = 0, env: dict[str, str] | None = None, port: int = 8080,
               reason: str = "", image: str | None = None, deadline_s: float | None = None,
               progress: Progress | None = None) -> Revision:
        """A new deployment of MODEL@ALIAS / MODEL/VERSION; re-running it after an interruption resumes."""
        names.check_deployment_name(name)
        tgt = self.store.target(names.check_target_name(target))
        version = self._resolve(model_ref)
        spec = DeploymentSpec(name=name, target=tgt.name, model_ref=model_ref, model=version.name,
                              version=int(version.version), replicas=names.check_replicas(replicas),
                              cpu=names.check_cpu(cpu), memory=names.check_memory(memory),
                              gpus=names.check_gpus(gpus), env=names.check_env(env), port=names.check_port(port))
        reason = names.check_reason(reason)
        if self.store.exists(name):
            pending = self._pending_revision(name)
            if pending is None or pending.spec != spec:
                raise UsageError(f"a deployment named {name!r} exists already",
                                 hint="`deploy update` changes it; `deploy delete` removes it")
            image = image or pending.image
        else:
            with self.ws.db.transaction() as conn:
                self.store.insert_deployment(conn, spec, current_actor())
        image = image or self._image(version, tgt, progress)
        return self._rollout(name, spec, version, image, None, action="create", reason=reason,
                             deadline_s=deadline_s, progress=progress)

    def update(self, name: str, model_ref: str | None = None, *, replicas: int | None = None, cpu: Any = _UNSET,
               memory: Any = _UNSET, gpus: int | None = None, env: dict[str, str] | None = None,
               port: int | None = None, reason: str = "", image: str | None = None,
               deadline_s: float | None = None, progress: Progress | None = None) -> Revision:
        """A rolling update to another version (or resources); all traffic goes to it (an A/B split ends)."""
        dep = self.get(name)
        tgt = self.store.target(dep.target)
        ref = model_ref or f"{dep.spec.model}/{dep.spec.version}"
        version = self._resolve(ref)
        spec = dep.spec.with_(
            model_ref=ref, model=version.name, version=int(version.version),
            replicas=dep.spec.replicas if replicas is None else names.check_replicas(replicas),
            cpu=dep.spec.cpu if cpu is _UNSET else names.check_cpu(cpu),
            memory=dep.spec.memory if memory is _UNSET else names.check_memory(memory),
            gpus=dep.spec.gpus if gpus is None else names.check_gpus(gpus),
            env=dep.spec.env if env is None else names.check_env(env),
            port=dep.spec.port if port is None else names.check_port(port))
        pending = self._pending_revision(name)
        if image is None and pending is not None and pending.spec == spec:
            image = pending.image
        image = image or self._image(version, tgt, progress)
        return self._rollout(name, spec, version, image, None, action="update", reason=names.check_reason(reason),
                             deadline_s=deadline_s, progress=progress)

    def resume(self, name: str, *, deadline_s: float | None = None, progress: Progress | None = None) -> Revision:
        """Continue the last revision that never finished (engine unreachable, cancelled, app killed)."""
        pending = self._pending_revision(names.check_deployment_name(name))
        if pending is None or pending.spec is None:
            raise UsageError(f"deployment {name!r} has no unfinished rollout to resume")
        version = self._resolve(pending.ref)
        return self._rollout(name, pending.spec, version, pending.image, pending.router, action=pending.action,
                             reason=pending.reason, deadline_s=deadline_s, progress=progress)

    def rollback(self, name: str, to: int | None = None, *, reason: str = "", deadline_s: float | None = None,
                 progress: Progress | None = None, _action: str = "rollback",
                 _details: dict[str, Any] | None = None) -> Revision:
        """Back to ANY earlier revision (`to`), by default the last healthy one before the current one. The
        current replica count is kept (as `kubectl rollout undo` does)."""
        dep = self.get(name)
        revs = self.store.revisions(name)
        if to is None:
            older = [r for r in revs if r.number < dep.current_revision and r.outcome in ("healthy", "reverted")
                     and (r.model, r.version, r.image) != (dep.model, dep.version, dep.image)]
            if not older:
                raise UsageError(f"deployment {name!r} has no earlier healthy revision to roll back to",
                                 hint=f"`deploy history {name}` lists them; pick one with --to")
            dest = older[-1]
        else:
            if not isinstance(to, int) or isinstance(to, bool) or to < 1:
                raise UsageError(f"invalid revision {to!r}", hint="a revision number from `deploy history`")
            dest = self.store.revision(name, to)
            if dest.number == dep.current_revision and dep.state == "healthy":
                raise UsageError(f"revision {to} is the one serving now")
        assert dest.spec is not None
        spec = dest.spec.with_(replicas=dep.spec.replicas)
        version = self._resolve(dest.ref)
        return self._rollout(name, spec, version, dest.image, dest.router, action=_action,
                             reason=names.check_reason(reason), deadline_s=deadline_s, progress=progress,
                             to_revision=dest.number, details={"to_revision": dest.number, **(_details or {})})

    def revert(self, name: str, reason: str, cause: str | None = None, *, deadline_s: float | None = None,
               progress: Progress | None = None) -> Revision:
        """Switch back to the last stable revision: the last one that was healthy and never flagged alerting."""
        dep = self.get(name)
        stable = self.last_stable(name)
        if stable is None:
            raise UsageError(f"deployment {name!r} has no earlier stable revision (healthy, not alerting)",
                             hint=f"`deploy history {name}`")
        return self.rollback(name, stable.number, reason=reason, deadline_s=deadline_s, progress=progress,
                             _action="revert", _details={"cause": cause, "from_revision": dep.current_revision})

    def last_stable(self, name: str) -> Revision | None:
        """The revert's destination: the newest earlier revision that was healthy, not alerting, and not the same
        version and image as the one serving now (monitoring names it in its confirmation)."""
        dep = self.get(name)
        for r in reversed(self.store.revisions(name)):
            if r.number >= dep.current_revision or r.alerting:
                continue
            if r.outcome in ("healthy", "reverted") and r.finished_at is not None \
                    and (r.model, r.version, r.image) != (dep.model, dep.version, dep.image):
                return r
        return None

    def flag_alerting(self, name: str, revision: int, alert_id: str) -> None:
        """Monitoring: an alert fired while `revision` served; it will never be a revert's destination."""
        if not isinstance(alert_id, str) or not alert_id.strip() or len(alert_id) > 200:
            raise UsageError(f"invalid alert id {alert_id!r}")
        self.get(name)
        with self.ws.db.transaction() as conn:
            if self.store.flag_alerting(conn, name, int(revision), alert_id) == 0:
                raise UsageError(f"deployment {name!r} has no revision {revision}")
            audit_append(conn, "deploy.alerting", f"deployment:{name}", to_value=revision,
                         reason=f"alert {alert_id}", details={"revision": int(revision), "alert": alert_id})

    def scale(self, name: str, replicas: int, *, reason: str = "") -> Status:
        """Replica count of the serving workload (with a router: the stable arm); not a new revision."""
        dep = self.get(name)
        replicas = names.check_replicas(replicas)
        with self.exclusive(name):
            self.backend(dep.target).scale(name, replicas)
        with self.ws.db.transaction() as conn:
            self.store.set_current(conn, name, dep.spec.with_(replicas=replicas), dep.router, dep.current_revision)
            audit_append(conn, "deploy.scale", f"deployment:{name}", from_value=dep.spec.replicas,
                         to_value=replicas, reason=names.check_reason(reason))
        self.store.add_event(name, dep.current_revision, "scale", f"scaled {dep.spec.replicas} -> {replicas}")
        return self.status(name)

    def restart(self, name: str, *, reason: str = "") -> Status:
        dep = self.get(name)
        with self.exclusive(name):
            self.backend(dep.target).restart(name)
        self._audit("deploy.restart", name, reason=names.check_reason(reason))
        self.store.add_event(name, dep.current_revision, "restart", "rolling restart of every replica")
        return self.status(name)

    def delete(self, name: str, *, reason: str = "") -> None:
        """Remove it from the engine, then from the workspace; its revision history stays in the database."""
        dep = self.get(name)
        with self.exclusive(name):
            self.backend(dep.target).delete(name)
        with self.ws.db.transaction() as conn:
            self.store.delete_deployment(conn, name)
            audit_append(conn, "deploy.delete", f"deployment:{name}", from_value=dep.current_revision,
                         reason=names.check_reason(reason), details={"target": dep.target, "model": dep.spec.model})

    # -- A/B and shadow ----------------------------------------------------------------------------------------
    def _arm_images(self, dep: Deployment, versions: dict[str, ModelVersion], tgt: Target,
                    progress: Progress | None) -> dict[str, str]:
        known = {(a.model, a.version): a.image for a in (dep.router.arms if dep.router else ())}
        known[(dep.model, dep.version)] = dep.image
        return {arm: known.get((v.name, int(v.version))) or self._image(v, tgt, progress)
                for arm, v in versions.items()}

    def split(self, name: str, weights: dict[str, float], *, sticky_header: str | None = None, reason: str = "",
              deadline_s: float | None = None, progress: Progress | None = None) -> Deployment:
        """A weighted A/B split between versions ({"churn/1": 90, "churn/2": 10}). When the router already runs
        those arms the weights change live through its admin API (no redeploy); else the router and the arms roll
        out as a new revision."""
        dep = self.get(name)
        if not isinstance(weights, dict) or len(weights) < 1:
            raise UsageError("give at least one MODEL/VERSION=WEIGHT", hint="e.g. churn/1=90 churn/2=10")
        versions: dict[str, ModelVersion] = {}
        arm_weights: dict[str, float] = {}
        for ref, weight in weights.items():
            v = self._resolve(ref)
            if v.name != dep.spec.model:
                raise UsageError(f"{ref}: a deployment of {dep.spec.model} splits between its versions only")
            if not isinstance(weight, int | float) or isinstance(weight, bool) or weight < 0 or weight > 1e6:
                raise UsageError(f"weight of {ref} must be a number from 0 to 1000000, got {weight!r}")
            versions[names.arm_name(v.version)] = v
            arm_weights[names.arm_name(v.version)] = float(weight)
        if sum(arm_weights.values()) <= 0:
            raise UsageError("the weights add up to 0: no arm would get traffic")
        sticky = names.check_header(sticky_header) if sticky_header else None
        reason = names.check_reason(reason)
        cur = dep.router
        shadow_arm = cur.shadow_arm if cur and cur.shadow_arm not in arm_weights else None
        if cur and set(arm_weights) | ({shadow_arm} if shadow_arm else set()) == {a.arm for a in cur.arms} \
                and sticky == cur.sticky_header:
            return self._live_weights(dep, arm_weights, reason)
        stable_arm = names.arm_name(dep.version) if names.arm_name(dep.version) in arm_weights else \
            max(arm_weights, key=lambda a: arm_weights[a])
        tgt = self.store.target(dep.target)
        if shadow_arm and cur:
            versions[shadow_arm] = self._resolve(f"{dep.spec.model}/{cur.arm(shadow_arm).version}")
        images = self._arm_images(dep, versions, tgt, progress)
        arms = tuple(ArmPlan(arm=a, model=v.name, version=int(v.version), image=images[a],
                             weight=arm_weights.get(a, 0.0),
                             replicas=dep.spec.replicas if a == stable_arm else max(1, dep.spec.replicas // 2))
                     for a, v in sorted(versions.items(), key=lambda kv: int(kv[1].version)))
        plan = RouterPlan(arms=arms, stable=stable_arm, sticky_header=sticky, shadow_arm=shadow_arm,
                          shadow_percent=cur.shadow_percent if cur and shadow_arm else 0.0,
                          image=self._router_image(dep, tgt, images[stable_arm], progress))
        stable_v = versions[stable_arm]
        spec = dep.spec.with_(model_ref=f"{stable_v.name}/{stable_v.version}", version=int(stable_v.version))
        rev = self._rollout(name, spec, stable_v, images[stable_arm], plan, action="split", reason=reason,
                            deadline_s=deadline_s, progress=progress)
        _require_healthy(rev, "split")
        return self.get(name)

    def _live_weights(self, dep: Deployment, weights: dict[str, float], reason: str) -> Deployment:
        assert dep.router is not None
        admin = self.backend(dep.target).router_admin(dep.name)
        if admin is None:
            raise MlopsError(f"deployment {dep.name!r} records a router but the engine has none",
                             hint=f"`deploy status {dep.name}`; `deploy resume` re-applies it")
        from mlops_desktop.serving.router_client import AdminClient

        full = {a.arm: weights.get(a.arm, 0.0) for a in dep.router.arms}
        AdminClient(admin[0], admin[1]).change(actor=current_actor(), reason=reason or "weights changed",
                                               weights=full)
        plan = RouterPlan(arms=tuple(ArmPlan(**{**a.to_dict(), "weight": full[a.arm]}) for a in dep.router.arms),
                          stable=dep.router.stable, sticky_header=dep.router.sticky_header,
                          shadow_arm=dep.router.shadow_arm, shadow_percent=dep.router.shadow_percent,
                          image=dep.router.image, port=dep.router.port)
        with self.ws.db.transaction() as conn:
            self.store.set_current(conn, dep.name, dep.spec, plan, dep.current_revision)
            audit_append(conn, "deploy.split", f"deployment:{dep.name}", from_value=_fmt(dep.router.weights),
                         to_value=_fmt(full), reason=reason, details={"live": True, "weights": full})
        self.store.add_event(dep.name, dep.current_revision, "split", f"weights {_fmt(full)} (live)")
        return self.get(dep.name)

    def shadow(self, name: str, ref: str, percent: float, *, reason: str = "", deadline_s: float | None = None,
               progress: Progress | None = None) -> Deployment:
        """Mirror `percent` of the traffic to `ref` (answers logged, never returned); 0 turns the shadow off."""
        dep = self.get(name)
        if not isinstance(percent, int | float) or isinstance(percent, bool) or not 0 <= percent <= 100:
            raise UsageError(f"invalid shadow percent {percent!r}", hint="a number from 0 to 100")
        v = self._resolve(ref)
        if v.name != dep.spec.model:
            raise UsageError(f"{ref}: a deployment of {dep.spec.model} shadows its own versions only")
        arm = names.arm_name(v.version)
        reason = names.check_reason(reason)
        cur = dep.router
        if cur and cur.shadow_arm == arm:
            admin = self.backend(dep.target).router_admin(name)
            if admin is None:
                raise MlopsError(f"deployment {name!r} records a router but the engine has none")
            from mlops_desktop.serving.router_client import AdminClient

            AdminClient(admin[0], admin[1]).change(actor=current_actor(), reason=reason or "shadow changed",
                                                   shadow={"enabled": percent > 0, "percent": float(percent)})
            plan = RouterPlan(arms=cur.arms, stable=cur.stable, sticky_header=cur.sticky_header, shadow_arm=arm,
                              shadow_percent=float(percent), image=cur.image, port=cur.port)
            with self.ws.db.transaction() as conn:
                self.store.set_current(conn, name, dep.spec, plan, dep.current_revision)
                audit_append(conn, "deploy.shadow", f"deployment:{name}", from_value=cur.shadow_percent,
                             to_value=float(percent), reason=reason, details={"live": True, "arm": arm})
            return self.get(name)
        if percent == 0:
            raise UsageError(f"deployment {name!r} does not shadow {ref}")
        if cur and any(a.arm == arm and a.weight > 0 for a in cur.arms):
            raise UsageError(f"{ref} already takes part of the traffic; a shadow arm gets no traffic of its own")
        tgt = self.store.target(dep.target)
        base = cur.arms if cur else (ArmPlan(arm=names.arm_name(dep.version), model=dep.model, version=dep.version,
                                             image=dep.image, weight=100.0, replicas=dep.spec.replicas),)
        base = tuple(a for a in base if a.arm != (cur.shadow_arm if cur else None))
        image = self._arm_images(dep, {arm: v}, tgt, progress)[arm]
        arms = (*base, ArmPlan(arm=arm, model=v.name, version=int(v.version), image=image, weight=0.0, replicas=1))
        stable = cur.stable if cur else names.arm_name(dep.version)
        plan = RouterPlan(arms=arms, stable=stable, sticky_header=cur.sticky_header if cur else None,
                          shadow_arm=arm, shadow_percent=float(percent),
                          image=self._router_image(dep, tgt, dep.image, progress))
        rev = self._rollout(name, dep.spec, self._resolve(f"{dep.model}/{dep.version}"), dep.image, plan,
                            action="shadow", reason=reason, deadline_s=deadline_s, progress=progress)
        _require_healthy(rev, "shadow")
        return self.get(name)


def _require_healthy(rev: Revision, what: str) -> None:
    """split/shadow answer with the deployment; a rollout of theirs that did not become healthy is an error."""
    if rev.outcome != "healthy":
        serving = "the previous revision still serves" if rev.outcome == "rolled_back" else \
            "run it again to resume" if rev.outcome == "unknown" else "nothing was changed"
        raise MlopsError(f"the {what} (revision {rev.number}) is {rev.outcome.replace('_', ' ')}: {rev.detail}",
                         hint=serving)


def _fmt(weights: dict[str, float]) -> str:
    return " ".join(f"{k}={v:g}" for k, v in sorted(weights.items()))
