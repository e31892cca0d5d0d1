"""The `swarm` target: a deployment as Swarm services on a manager, through the Docker SDK and the raw Engine API.

One overlay network per deployment; the model service `<name>` (or one service per arm, `<name>-<arm>`, with the
router service `<name>-router` in front). Endpoints: `dnsrr` and host-mode published ports by default (no IPVS in
this kernel: VIPs and the ingress mesh do not route here), `vip`/`ingress` for clusters that have them (Target
options `endpoint_mode`, `publish_mode`). A rolling update uses Swarm's update_config (start-first, one at a time,
failure_action rollback) AND our readiness check of each new task's published port; not ready by the deadline, or
two new tasks failed -> we roll back ourselves (`POST /services/{id}/update?rollback=previous`, which the SDK
lacks) unless Swarm already did, and wait for the previous tasks. Swarm keeps ONE previous spec: a rollback to an
older revision is an update to that revision's spec.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

from mlops_desktop.deploy import dockerapi as d
from mlops_desktop.deploy.backend import EngineUnreachable, ProgressFn, RolloutFailed
from mlops_desktop.deploy.models import (
    DeploymentSpec,
    Endpoint,
    ReplicaStatus,
    Revision,
    RolloutResult,
    RouterPlan,
    Status,
    Target,
    TargetCheck,
)
from mlops_desktop.deploy.names import workload_name

L_HASH = "mlops.spec-hash"
FAILED_TASKS = 2            # new tasks failed this often: crash loop, roll back now
POLL_S = 0.3
NS = 1_000_000_000
_STARTING = {"new", "allocated", "pending", "assigned", "accepted", "preparing", "ready", "starting"}
_FAILED = {"failed", "rejected", "orphaned"}


def _healthcheck(port: int, start_s: float) -> dict[str, Any]:
    """The container's own health (what Swarm restarts a task on): LIVENESS, so a replica whose arm or model is
    merely not ready is not killed (a router is not ready while its stable arm has no backend; killing it then
    cascades). Readiness gates rollouts through our own probe. Lenient: a python start costs seconds on a
    loaded node. Its start period is the rollout's deadline: within it only our gate decides (a model that loads
    slowly is not killed by Swarm before the deadline we promised it)."""
    probe = (f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/v2/health/live', "
             "timeout=5)")
    return {"Test": ["CMD", "python3", "-c", probe], "Interval": 3 * NS, "Timeout": 8 * NS, "Retries": 3,
            "StartPeriod": int(max(20.0, start_s) * NS)}


class SwarmBackend:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._client: Any = None
        self._lock = threading.Lock()
        self._nodes: dict[str, str] = {}

    # -- plumbing ----------------------------------------------------------------------------------------------
    @property
    def api(self) -> Any:
        d.preflight(self.target)
        with self._lock:
            if self._client is None:
                self._client = d.client(self.target)
                cfg = self.target.option("docker_config")
                if cfg:
                    self._client.api.reload_config(f"{cfg}/config.json")
            return self._client.api

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _services(self, name: str) -> list[dict[str, Any]]:
        with d.engine_errors(self.target, f"listing the services of {name}"):
            return list(self.api.services(filters={"label": f"{d.LABEL}={name}"}))

    def _service(self, svc_name: str) -> dict[str, Any] | None:
        with d.engine_errors(self.target, f"looking up service {svc_name}"):
            for s in self.api.services(filters={"name": svc_name}):
                if s["Spec"]["Name"] == svc_name:
                    return dict(s)
        return None

    def _tasks(self, service_id: str, *, running: bool = True) -> list[dict[str, Any]]:
        filters: dict[str, Any] = {"service": service_id}
        if running:
            filters["desired-state"] = "running"
        with d.engine_errors(self.target, "listing tasks"):
            return list(self.api.tasks(filters=filters))

    def _node_address(self, node_id: str) -> str:
        fixed = self.target.option("node_address")
        if fixed:
            return str(fixed)
        if node_id not in self._nodes:
            with d.engine_errors(self.target, "looking up a node"):
                addr = (self.api.inspect_node(node_id).get("Status") or {}).get("Addr") or "127.0.0.1"
            self._nodes[node_id] = "127.0.0.1" if addr in ("0.0.0.0", "") else addr  # noqa: S104
        return self._nodes[node_id]

    def _task_address(self, task: dict[str, Any], service: dict[str, Any], port: int) -> str:
        ports = ((task.get("Status") or {}).get("PortStatus") or {}).get("Ports") or []
        published = next((p.get("PublishedPort") for p in ports if p.get("TargetPort") == port), None)
        if published is None:  # ingress mode: the service's port on any node
            eports = (service.get("Endpoint") or {}).get("Ports") or []
            published = next((p.get("PublishedPort") for p in eports if p.get("TargetPort") == port), None)
        if not published or not task.get("NodeID"):
            return ""
        return f"{self._node_address(task['NodeID'])}:{published}"

    # -- check -------------------------------------------------------------------------------------------------
    def check(self) -> TargetCheck:
        try:
            d.preflight(self.target)
            with d.engine_errors(self.target, "checking the Swarm"):
                version = self.api.version()
                info = self.api.info()
                swarm = info.get("Swarm") or {}
                if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
                    return TargetCheck(self.target.name, False, f"Docker {version.get('Version', '?')}",
                                       detail="this engine is not a Swarm manager (LocalNodeState "
                                              f"{swarm.get('LocalNodeState', '?')})", checked_at=time.time())
                nodes = tuple({"name": (n.get("Description") or {}).get("Hostname", n["ID"][:12]),
                               "role": n["Spec"].get("Role", ""), "state": (n.get("Status") or {}).get("State", ""),
                               "availability": n["Spec"].get("Availability", ""),
                               "address": (n.get("Status") or {}).get("Addr", "")} for n in self.api.nodes())
        except (EngineUnreachable, RolloutFailed) as exc:
            return TargetCheck(self.target.name, False, detail=exc.message, checked_at=time.time())
        ready = sum(n["state"] == "ready" for n in nodes)
        return TargetCheck(self.target.name, True, f"Docker {version.get('Version', '?')} Swarm", nodes,
                           f"{ready}/{len(nodes)} nodes ready", time.time())

    # -- specs -------------------------------------------------------------------------------------------------
    def _ensure_network(self, name: str) -> None:
        with d.engine_errors(self.target, f"creating the network of {name}"):
            if not [n for n in self.api.networks(names=[name]) if n.get("Name") == name]:
                self.api.create_network(name, driver="overlay", attachable=True, scope="swarm",
                                        labels={d.LABEL: name, **d.target_labels(self.target)})

    def _body(self, svc_name: str, spec: DeploymentSpec, image: str, labels: dict[str, str], *, port: int,
              replicas: int, env: dict[str, str] | None = None, command: list[str] | None = None,
              volume: str | None = None, start_s: float = 60.0) -> tuple[dict[str, Any], str]:
        """(create/update kwargs, the hash of what they ask for)."""
        import docker.types as t

        d.check_image_ref(image)
        mounts = [{"Type": "volume", "Source": volume, "Target": d.ROUTER_STATE,
                   "VolumeOptions": {"Labels": {d.LABEL: spec.name}}}] if volume else None
        identity = {"image": image, "env": d.env_list(spec, env), "command": command, "port": port,
                    "cpu": spec.cpu, "memory": spec.memory, "gpus": spec.gpus, "labels": labels,
                    "mode": self.target.option("endpoint_mode", "dnsrr"),
                    "publish": self.target.option("publish_mode", "host")}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        all_labels = {**labels, **d.target_labels(self.target), L_HASH: digest}
        container = t.ContainerSpec(image, command=command, env=d.env_list(spec, env), labels=all_labels,
                                    healthcheck=_healthcheck(port, start_s), stop_grace_period=10 * NS,
                                    mounts=mounts)
        resources = t.Resources(cpu_limit=int(spec.cpu * NS) if spec.cpu else None, mem_limit=spec.memory or None,
                                generic_resources={"NVIDIA-GPU": spec.gpus} if spec.gpus else None)
        template = t.TaskTemplate(container, resources=resources,
                                  restart_policy=t.RestartPolicy(condition="any", delay=NS // 2),
                                  networks=[{"Target": spec.name}])
        publish = self.target.option("publish_mode", "host")
        endpoint = {"Mode": self.target.option("endpoint_mode", "dnsrr"),
                    "Ports": [{"Protocol": "tcp", "TargetPort": port, "PublishMode": publish}]}
        body = {"task_template": template, "name": svc_name, "labels": all_labels,
                "mode": t.ServiceMode("replicated", replicas=replicas), "endpoint_spec": endpoint,
                "update_config": t.UpdateConfig(parallelism=1, order="start-first", failure_action="rollback",
                                                monitor=3 * NS, max_failure_ratio=0.0),
                "rollback_config": t.RollbackConfig(parallelism=0, order="start-first")}
        return body, digest

    def _upsert(self, body: dict[str, Any]) -> tuple[str, str]:
        """('created' | 'updated' | 'same', service id)."""
        svc_name = body["name"]
        existing = self._service(svc_name)
        with d.engine_errors(self.target, f"creating or updating service {svc_name}"):
            if existing is None:
                created = self.api.create_service(**body)
                return "created", str(created["ID"])
            # the SDK's ServiceMode is {"replicated": {"Replicas": n}}; the engine's spec spells it "Replicated"
            if existing["Spec"].get("Labels", {}).get(L_HASH) == body["labels"][L_HASH] and \
                    existing["Spec"]["Mode"].get("Replicated", {}).get("Replicas") == \
                    body["mode"].replicas:
                return "same", str(existing["ID"])
            self.api.update_service(existing["ID"], existing["Version"]["Index"], **body)
            return "updated", str(existing["ID"])

    def _rollback_service(self, service_id: str) -> None:
        """The Engine API's own rollback to the service's previous spec (the SDK has no call for it)."""
        api = self.api
        with d.engine_errors(self.target, "rolling the service back"):
            svc = api.inspect_service(service_id)
            state = (svc.get("UpdateStatus") or {}).get("State", "")
            if state.startswith("rollback") or not svc.get("PreviousSpec"):
                return
            url = api._url("/services/{0}/update", service_id)
            resp = api._post_json(url, data=svc["Spec"], params={"version": svc["Version"]["Index"],
                                                                 "rollback": "previous"})
            api._raise_for_status(resp)

    # -- waiting -----------------------------------------------------------------------------------------------
    def _wait(self, wanted: list[tuple[str, str, int, int]], deadline: d.Deadline, report: ProgressFn | None,
              events: list[str]) -> tuple[bool, str, int, int]:
        """wanted: (service id, spec hash, replicas, port). (ok, why not, ready, desired)."""
        desired = sum(w[2] for w in wanted)
        seen: set[str] = set()
        while True:
            ready, problems = 0, []
            for sid, digest, replicas, port in wanted:
                with d.engine_errors(self.target, "watching the rollout"):
                    svc = self.api.inspect_service(sid)
                update = svc.get("UpdateStatus") or {}
                if update.get("State", "").startswith("rollback"):
                    return False, (f"Swarm rolled {svc['Spec']['Name']} back: "
                                   f"{update.get('Message', '')}".strip()), ready, desired
                tasks = [x for x in self._tasks(sid, running=False)
                         if ((x.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels", {}).get(L_HASH)
                         == digest]
                failed = [x for x in tasks if (x.get("Status") or {}).get("State") in _FAILED]
                if len(failed) >= FAILED_TASKS:
                    st = failed[-1].get("Status") or {}
                    code = ((st.get("ContainerStatus") or {}).get("ExitCode"))
                    return False, (f"{len(failed)} new tasks of {svc['Spec']['Name']} failed"
                                   + (f" (exit code {code})" if code is not None else "")
                                   + (f": {st.get('Err')}" if st.get("Err") else "")
                                   + self._last_lines(sid)), ready, desired
                live = [x for x in tasks if x.get("DesiredState") == "running"]
                svc_ready = 0
                for task in live:
                    state = (task.get("Status") or {}).get("State")
                    if state != "running":
                        problems.append(f"{svc['Spec']['Name']} task {task['ID'][:8]}: {state}")
                        continue
                    address = self._task_address(task, svc, port)
                    if not address:
                        problems.append(f"task {task['ID'][:8]}: no published port yet")
                        continue
                    host, _, p = address.rpartition(":")
                    ok, why = d.probe(host, int(p))
                    if ok:
                        svc_ready += 1
                        if task["ID"] not in seen:
                            seen.add(task["ID"])
                            events.append(f"{svc['Spec']['Name']} task {task['ID'][:8]} ready at {address} after "
                                          f"{deadline.elapsed:.1f} s")
                    else:
                        problems.append(f"{svc['Spec']['Name']} task {task['ID'][:8]}: {why}")
                ready += min(svc_ready, replicas)
            if report:
                report(min(0.95, 0.1 + 0.85 * ready / max(1, desired)), f"{ready}/{desired} new replicas ready")
            if ready >= desired:
                return True, "", ready, desired
            if deadline.passed():
                return False, (f"not ready within {deadline.end - deadline.start:g} s: "
                               + "; ".join(problems[:3])), ready, desired
            time.sleep(POLL_S)

    def _last_lines(self, sid: str, n: int = 3) -> str:
        with contextlib.suppress(Exception):
            raw = self.api.service_logs(sid, stdout=True, stderr=True, tail=n)
            data = b"".join(raw) if not isinstance(raw, bytes | str) else raw
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            lines = [line.strip() for line in text.splitlines() if line.strip()][-n:]
            if lines:
                return "; last output: " + " | ".join(lines)
        return ""

    # -- apply -------------------------------------------------------------------------------------------------
    def apply(self, spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
              deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        deadline = d.Deadline(deadline_s)
        events: list[str] = []
        name = spec.name
        before = self._services(name)
        had_serving = any(s["Spec"].get("Labels", {}).get(d.L_ROLE) == "replica"
                          and s["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0) > 0 for s in before)
        self._ensure_network(name)
        rev = revision.number
        plan: list[dict[str, Any]] = []
        hashes: dict[str, tuple[str, int, int]] = {}
        if router is None:
            body, digest = self._body(name, spec, image, d.labels(spec, rev), port=spec.port,
                                      replicas=spec.replicas, env={"MLOPS_DEPLOYMENT": name}, start_s=deadline_s)
            plan.append(body)
            hashes[name] = (digest, spec.replicas, spec.port)
        else:
            for a in router.arms:
                arm_spec = spec.with_(version=a.version, replicas=a.replicas)
                svc = workload_name(name, a.arm)
                body, digest = self._body(svc, arm_spec, a.image, d.labels(arm_spec, rev, arm=a.arm),
                                          port=spec.port, replicas=a.replicas,
                                          env={"MLOPS_DEPLOYMENT": name, "MLOPS_ARM": a.arm}, start_s=deadline_s)
                plan.append(body)
                hashes[svc] = (digest, a.replicas, spec.port)
            config = d.router_config(name, router, lambda arm: workload_name(name, arm), spec.port)
            rsvc = workload_name(name, "router")
            existing = self._service(rsvc)
            token = _env_of(existing).get("MLOPS_ADMIN_TOKEN") if existing else None
            token = token or secrets.token_urlsafe(32)
            rspec = spec.with_(cpu=None, memory=None, gpus=0, env={})
            cfg_text = json.dumps(config, sort_keys=True)
            vol = f"{rsvc}-{hashlib.sha256(cfg_text.encode()).hexdigest()[:10]}"
            body, digest = self._body(rsvc, rspec, router.image,
                                      d.labels(spec, rev, arm="router", role="router", replicas=1,
                                               extra={d.L_STABLE: router.stable}),
                                      port=d.ROUTER_PORT, replicas=1, command=d.ROUTER_COMMAND, volume=vol,
                                      env={"MLOPS_ROUTER_CONFIG": cfg_text, "MLOPS_ADMIN_TOKEN": token},
                                      start_s=deadline_s)
            plan.append(body)
            hashes[rsvc] = (digest, 1, d.ROUTER_PORT)
        done: list[tuple[str, str]] = []   # (what happened, service id), to undo in reverse on failure
        wanted = []
        try:
            for body in plan:
                what, sid = self._upsert(body)
                done.append((what, sid))
                digest, replicas, port = hashes[body["name"]]
                wanted.append((sid, digest, replicas, port))
                events.append(f"{what} service {body['name']}")
            ok, why, ready, desired = self._wait(wanted, deadline, progress, events)
        except RolloutFailed as exc:
            ok, why, ready, desired = False, exc.message, 0, sum(h[1] for h in hashes.values())
        if ok:
            keep = {sid for _, sid in done}
            stale = [s for s in self._services(name) if s["ID"] not in keep]
            for s in stale:
                with contextlib.suppress(Exception):
                    self.api.remove_service(s["ID"])
                events.append(f"removed service {s['Spec']['Name']}")
            return RolloutResult("healthy", f"{ready}/{desired} replicas ready in {deadline.elapsed:.1f} s",
                                 ready, desired, tuple(events), deadline.elapsed)
        events.append(f"not healthy: {why}")
        back = []
        for what, sid in reversed(done):
            if what == "created":
                with contextlib.suppress(Exception):
                    self.api.remove_service(sid)
                events.append(f"removed the new service {sid[:12]}")
            elif what == "updated":
                self._rollback_service(sid)
                events.append(f"rolled service {sid[:12]} back to its previous spec")
                back.append(sid)
        if back:
            self._wait_previous(back, events)
        return RolloutResult("rolled_back" if had_serving else "failed", why, ready, desired, tuple(events),
                             deadline.elapsed)

    def _wait_previous(self, service_ids: list[str], events: list[str], timeout: float = 30.0) -> None:
        """After a rollback: wait (bounded) until the rolled-back services' tasks answer again."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            status = [self._service_ready(sid) for sid in service_ids]
            if all(r >= want > 0 for r, want in status):
                events.append("the previous revision answers again")
                return
            time.sleep(POLL_S)
        events.append("the previous revision did not answer within 30 s of the rollback")

    def _service_ready(self, sid: str) -> tuple[int, int]:
        svc = self.api.inspect_service(sid)
        want = svc["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0)
        port = _port_of(svc)
        ready = 0
        for task in self._tasks(sid):
            if (task.get("Status") or {}).get("State") == "running":
                address = self._task_address(task, svc, port)
                if address:
                    host, _, p = address.rpartition(":")
                    ready += d.probe(host, int(p))[0]
        return ready, want

    def undo(self, name: str, to_spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
             deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        return self.apply(to_spec, revision, image, router, deadline_s, progress)

    # -- observe -----------------------------------------------------------------------------------------------
    def status(self, name: str) -> Status:
        services = self._services(name)
        if not services:
            return Status(0, 0, (), "missing", f"no services of {name} on the Swarm", observed_at=time.time())
        replicas: list[ReplicaStatus] = []
        events: list[tuple[str, str]] = []
        desired = 0
        for svc in sorted(services, key=lambda s: s["Spec"]["Name"]):
            events += self._events(svc)
            lab = svc["Spec"].get("Labels", {})
            is_router = lab.get(d.L_ROLE) == "router"
            want = svc["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0)
            if not is_router:
                desired += want
            port = _port_of(svc)
            for task in sorted(self._tasks(svc["ID"]), key=lambda x: x.get("Slot") or 0):
                st = task.get("Status") or {}
                state = st.get("State", "")
                address = self._task_address(task, svc, port) if state == "running" else ""
                if state == "running" and address:
                    host, _, p = address.rpartition(":")
                    ok, why = d.probe(host, int(p))
                    health, detail = ("ready", "ready") if ok else ("unhealthy", why)
                elif state in _FAILED:
                    health, detail = "crashed", st.get("Err") or state
                elif state in _STARTING or state == "running":
                    health, detail = "starting", state
                else:
                    health, detail = "stopped", state
                replicas.append(ReplicaStatus(
                    id=f"{svc['Spec']['Name']}.{task.get('Slot', '?')}", health=health,  # type: ignore[arg-type]
                    detail=detail, version=lab.get(d.L_VERSION, ""), arm="router" if is_router else lab.get(d.L_ARM, ""),
                    node=task.get("NodeID", "")[:12], address=address))
        status = d.summarize(replicas)
        recent = tuple(text for _, text in sorted(events)[-10:])
        if status.desired != desired and status.state == "healthy":
            return Status(desired, status.ready, status.replicas, "degraded",
                          f"{status.ready}/{desired} replicas running", recent, observed_at=status.observed_at)
        return Status(desired, status.ready, status.replicas, status.state, status.reason, recent,
                      observed_at=status.observed_at)

    def _events(self, svc: dict[str, Any]) -> list[tuple[str, str]]:
        """The service's recent task history in words, (timestamp, text): failures, shutdowns, update state."""
        out: list[tuple[str, str]] = []
        update = svc.get("UpdateStatus") or {}
        if update.get("State"):
            out.append((update.get("CompletedAt") or update.get("StartedAt") or "",
                        f"{svc['Spec']['Name']}: update {update['State']}"
                        + (f" ({update['Message']})" if update.get("Message") else "")))
        for task in self._tasks(svc["ID"], running=False):
            st = task.get("Status") or {}
            if st.get("State") in _FAILED or (st.get("Err") and st.get("State") != "running"):
                code = (st.get("ContainerStatus") or {}).get("ExitCode")
                out.append((st.get("Timestamp", ""), f"{svc['Spec']['Name']}.{task.get('Slot', '?')} "
                            f"{st.get('State')}" + (f" (exit code {code})" if code not in (None, 0) else "")
                            + (f": {st['Err']}" if st.get("Err") else "")))
        return out

    def _primary(self, name: str) -> dict[str, Any]:
        services = self._services(name)
        router = next((s for s in services if s["Spec"].get("Labels", {}).get(d.L_ROLE) == "router"), None)
        wanted = workload_name(name, router["Spec"]["Labels"].get(d.L_STABLE)) if router else name
        svc = next((s for s in services if s["Spec"]["Name"] == wanted), None)
        if svc is None:
            raise RolloutFailed(f"{name} has no service {wanted} on the Swarm", hint=f"`deploy resume {name}`")
        return svc

    def scale(self, name: str, replicas: int) -> None:
        svc = self._primary(name)
        spec = dict(svc["Spec"])
        spec["Mode"] = {"Replicated": {"Replicas": int(replicas)}}
        with d.engine_errors(self.target, f"scaling {name}"):
            url = self.api._url("/services/{0}/update", svc["ID"])
            self.api._raise_for_status(self.api._post_json(url, data=spec,
                                                           params={"version": svc["Version"]["Index"]}))

    def restart(self, name: str) -> None:
        for svc in self._services(name):
            spec = dict(svc["Spec"])
            template = dict(spec["TaskTemplate"])
            template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1
            spec["TaskTemplate"] = template
            with d.engine_errors(self.target, f"restarting {svc['Spec']['Name']}"):
                url = self.api._url("/services/{0}/update", svc["ID"])
                self.api._raise_for_status(self.api._post_json(url, data=spec,
                                                               params={"version": svc["Version"]["Index"]}))

    def _log_stream(self, sid: str, follow: bool, since: float | None) -> Iterator[bytes]:
        out = self.api.service_logs(sid, follow=follow, stdout=True, stderr=True, since=int(since or 0))
        if isinstance(out, bytes):
            return iter([out])
        return out

    def logs(self, name: str, follow: bool = False, since: float | None = None) -> Iterator[str]:
        sources = [(s["Spec"]["Name"], functools.partial(self._log_stream, s["ID"], follow, since))
                   for s in self._services(name)]
        return d.merged_lines(sources, follow)

    def endpoints(self, name: str) -> list[Endpoint]:
        out = []
        for svc in self._services(name):
            lab = svc["Spec"].get("Labels", {})
            is_router = lab.get(d.L_ROLE) == "router"
            port = _port_of(svc)
            for task in self._tasks(svc["ID"]):
                if (task.get("Status") or {}).get("State") != "running":
                    continue
                address = self._task_address(task, svc, port)
                if address:
                    out.append(Endpoint(f"http://{address}", "router" if is_router else "replica",
                                        "" if is_router else lab.get(d.L_VERSION, ""),
                                        "" if is_router else lab.get(d.L_ARM, "")))
        return sorted(set(out), key=lambda e: (e.role != "router", e.url))

    def router_admin(self, name: str) -> tuple[str, str] | None:
        svc = self._service(workload_name(name, "router"))
        if svc is None:
            return None
        token = _env_of(svc).get("MLOPS_ADMIN_TOKEN")
        for task in self._tasks(svc["ID"]):
            address = self._task_address(task, svc, d.ROUTER_PORT)
            if address and token and (task.get("Status") or {}).get("State") == "running":
                return f"http://{address}", token
        return None

    def delete(self, name: str) -> None:
        for svc in self._services(name):
            with d.engine_errors(self.target, f"removing service {svc['Spec']['Name']}"):
                self.api.remove_service(svc["ID"])
        end = time.monotonic() + 60
        while time.monotonic() < end:  # the tasks' containers go asynchronously; the network only after them
            with d.engine_errors(self.target, "waiting for the tasks to stop"):
                left = self.api.containers(all=True, filters={"label": f"{d.LABEL}={name}"})
            if not left:
                break
            time.sleep(0.5)
        with d.engine_errors(self.target, f"removing the network of {name}"):
            for net in self.api.networks(names=[name]):
                if net.get("Name") == name and (net.get("Labels") or {}).get(d.LABEL) == name:
                    with contextlib.suppress(Exception):
                        self.api.remove_network(net["Id"])
            for vol in (self.api.volumes(filters={"label": f"{d.LABEL}={name}"}) or {}).get("Volumes") or []:
                with contextlib.suppress(Exception):
                    self.api.remove_volume(vol["Name"], force=True)


def _env_of(svc: dict[str, Any] | None) -> dict[str, str]:
    if not svc:
        return {}
    env = ((svc["Spec"].get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Env") or []
    return dict(e.split("=", 1) for e in env if "=" in e)


def _port_of(svc: dict[str, Any]) -> int:
    ports = (svc["Spec"].get("EndpointSpec") or {}).get("Ports") or []
    return int(ports[0]["TargetPort"]) if ports else 8080
