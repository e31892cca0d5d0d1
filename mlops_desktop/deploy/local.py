"""The `local` target: a deployment's replicas (and its router) as containers on one Docker engine.

Each deployment gets a bridge network named after it; replicas join it under the alias `<name>` (or `<name>-<arm>`
behind a router), so the router reaches an arm by one name whatever its replica count. Ports are published on
127.0.0.1 (Target option "bind") at random host ports. A rollout starts the new containers beside the old ones,
waits for OUR readiness check on each, then removes the old ones; a replica that is not ready by the deadline (or
crash-loops) makes it remove the new ones instead, so the old ones never stopped serving (`rolled_back`).
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

CRASH_RESTARTS = 2        # a new replica restarted this often is crash-looping: the rollout fails at once
POLL_S = 0.25
STOP_TIMEOUT_S = 5


class LocalBackend:
    def __init__(self, target: Target) -> None:
        self.target = target
        self._client: Any = None
        self._lock = threading.Lock()

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

    def _owned(self, name: str, *, role: str | None = None, arm: str | None = None) -> list[dict[str, Any]]:
        import docker

        filters = [f"{d.LABEL}={name}"]
        if role is not None:
            filters.append(f"{d.L_ROLE}={role}")
        if arm is not None:
            filters.append(f"{d.L_ARM}={arm}")
        with d.engine_errors(self.target, f"listing the containers of {name}"):
            found = self.api.containers(all=True, filters={"label": filters})
            out = []
            for c in found:
                try:
                    out.append(self.api.inspect_container(c["Id"]))
                except docker.errors.NotFound:
                    continue  # removed between the listing and its inspection (a rollout or a revert under way)
            return out

    def _host_port(self, info: dict[str, Any], port: int) -> int | None:
        bindings = (info.get("NetworkSettings") or {}).get("Ports") or {}
        for b in bindings.get(f"{port}/tcp") or []:
            if b.get("HostPort"):
                return int(b["HostPort"])
        return None

    def _probe_host(self) -> str:
        bind = d.bind_address(self.target)
        return "127.0.0.1" if bind in ("0.0.0.0", "::") else bind  # noqa: S104 - reaching it, not binding

    # -- check -------------------------------------------------------------------------------------------------
    def check(self) -> TargetCheck:
        try:
            d.preflight(self.target)
            with d.engine_errors(self.target, "checking the engine"):
                version = self.api.version()
                info = self.api.info()
        except (EngineUnreachable, RolloutFailed) as exc:
            return TargetCheck(self.target.name, False, detail=exc.message, checked_at=time.time())
        node = {"name": info.get("Name", ""), "role": "engine", "state": "ready",
                "address": d.bind_address(self.target), "cpus": info.get("NCPU"), "memory": info.get("MemTotal")}
        return TargetCheck(self.target.name, True, f"Docker {version.get('Version', '?')} "
                           f"(API {version.get('ApiVersion', '?')})", (node,),
                           f"{info.get('ContainersRunning', 0)} containers running", time.time())

    # -- building blocks ---------------------------------------------------------------------------------------
    def _ensure_image(self, image: str, report: ProgressFn | None) -> None:
        import docker

        d.check_image_ref(image)
        with d.engine_errors(self.target, f"looking up image {image}"):
            try:
                self.api.inspect_image(image)
                return
            except docker.errors.ImageNotFound:
                pass
        if report:
            report(0.05, f"pulling {image}")
        repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        with d.engine_errors(self.target, f"pulling image {image}"):
            for event in self.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                if isinstance(event, dict) and event.get("error"):
                    raise RolloutFailed(f"cannot pull {image}: {event['error']}",
                                        hint="is the image pushed, and is this engine logged in to its registry?")

    def _ensure_network(self, name: str) -> str:
        with d.engine_errors(self.target, f"creating the network of {name}"):
            if not self.api.networks(names=[name], filters={"label": f"{d.LABEL}={name}"}):
                self.api.create_network(name, driver="bridge", check_duplicate=True,
                                        labels={d.LABEL: name, **d.target_labels(self.target)})
        return name

    def _run(self, *, name: str, image: str, spec: DeploymentSpec, labels: dict[str, str], alias: str,
             port: int, env: dict[str, str] | None = None, command: list[str] | None = None,
             volume: str | None = None) -> str:
        api = self.api
        device_requests = None
        if spec.gpus:
            import docker

            device_requests = [docker.types.DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])]
        host_config = api.create_host_config(
            port_bindings={port: (d.bind_address(self.target), None)},
            restart_policy={"Name": "unless-stopped"},
            nano_cpus=int(spec.cpu * 1e9) if spec.cpu else None, mem_limit=spec.memory or None,
            device_requests=device_requests, binds={volume: {"bind": d.ROUTER_STATE, "mode": "rw"}} if volume else None)
        net = api.create_networking_config({spec.name: api.create_endpoint_config(aliases=[alias])})
        with d.engine_errors(self.target, f"starting container {name}"):
            created = api.create_container(image, name=name, command=command, environment=d.env_list(spec, env),
                                           labels={**labels, **d.target_labels(self.target)}, ports=[port],
                                           host_config=host_config, networking_config=net)
            api.start(created["Id"])
        return str(created["Id"])

    def _remove(self, infos: list[dict[str, Any]]) -> None:
        """Stop (SIGTERM, the server drains) and remove, in parallel; volumes of removed routers go too."""
        def one(info: dict[str, Any]) -> None:
            with contextlib.suppress(Exception):
                self.api.stop(info["Id"], timeout=STOP_TIMEOUT_S)
            with contextlib.suppress(Exception):
                self.api.remove_container(info["Id"], force=True, v=True)
            for m in info.get("Mounts") or []:
                if m.get("Type") == "volume" and m.get("Name", "").startswith(info["Config"]["Labels"][d.LABEL]):
                    with contextlib.suppress(Exception):
                        self.api.remove_volume(m["Name"], force=True)

        threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in infos]
        for t in threads:
            t.start()
        for t in threads:
            t.join(STOP_TIMEOUT_S + 20)

    def _replica_health(self, info: dict[str, Any], port: int) -> tuple[str, str, str]:
        """(health, detail, host:port) of one container, by its state and OUR readiness probe."""
        state = info.get("State") or {}
        restarts = int(info.get("RestartCount") or 0)
        if state.get("Status") in ("exited", "dead") or (state.get("Restarting") and restarts):
            return "crashed", f"exited with code {state.get('ExitCode')} ({restarts} restarts)", ""
        if state.get("Status") != "running":
            return "starting", f"container {state.get('Status')}", ""
        hp = self._host_port(info, port)
        if hp is None:
            return "starting", "no published port yet", ""
        ok, detail = d.probe(self._probe_host(), hp)
        address = f"{self._probe_host()}:{hp}"
        if ok:
            return "ready", "ready", address
        if restarts >= CRASH_RESTARTS:
            return "crashed", (f"restarted {restarts} times (last exit code {state.get('ExitCode')}); "
                               f"{detail}"), address
        return "unhealthy" if time.time() - _started(info) > 2 else "starting", detail, address

    def _last_lines(self, cid: str, n: int = 3) -> str:
        with contextlib.suppress(Exception):
            text = self.api.logs(cid, tail=n, stdout=True, stderr=True).decode("utf-8", "replace").strip()
            return " | ".join(line.strip() for line in text.splitlines()[-n:])
        return ""

    def _wait(self, ids: list[tuple[str, int]], deadline: d.Deadline, report: ProgressFn | None,
              events: list[str]) -> tuple[bool, str, int]:
        """Wait until every (container, port) is ready; (all ready, why not, how many ready)."""
        seen_ready: set[str] = set()
        while True:
            ready, problems = 0, []
            for cid, port in ids:
                with d.engine_errors(self.target, "watching the rollout"):
                    info = self.api.inspect_container(cid)
                health, detail, _ = self._replica_health(info, port)
                name = info["Name"].lstrip("/")
                if health == "ready":
                    ready += 1
                    if cid not in seen_ready:
                        seen_ready.add(cid)
                        events.append(f"{name} ready after {deadline.elapsed:.1f} s")
                elif health == "crashed":
                    lines = self._last_lines(cid)
                    return False, f"{name} {detail}" + (f"; last output: {lines}" if lines else ""), ready
                else:
                    problems.append(f"{name}: {detail}")
            if report:
                report(min(0.95, 0.1 + 0.85 * ready / max(1, len(ids))), f"{ready}/{len(ids)} new replicas ready")
            if ready == len(ids):
                return True, "", ready
            if deadline.passed():
                return False, (f"not ready within {deadline.end - deadline.start:g} s: " + "; ".join(problems[:3])), \
                    ready
            time.sleep(POLL_S)

    # -- apply -------------------------------------------------------------------------------------------------
    def apply(self, spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
              deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        deadline = d.Deadline(deadline_s)
        events: list[str] = []
        name = spec.name
        before = [i for i in self._owned(name) if (i.get("State") or {}).get("Running")]
        had_serving = any(i["Config"]["Labels"].get(d.L_ROLE) == "replica" for i in before)
        self._ensure_network(name)
        wanted: list[tuple[str, int]] = []   # (container id, port) that must become ready
        keep: set[str] = set()
        created: list[str] = []
        rev = revision.number
        arms = [(a.arm, a.image, a.version, a.replicas) for a in router.arms] if router else \
            [("", image, spec.version, spec.replicas)]
        for arm, arm_image, version, replicas in arms:
            self._ensure_image(arm_image, progress)
            same = [i for i in before if i["Config"]["Labels"].get(d.L_ROLE) == "replica"
                    and i["Config"]["Labels"].get(d.L_ARM) == arm and i["Config"]["Image"] == arm_image
                    and i["Config"]["Labels"].get(d.L_SPEC) == json.dumps(spec.with_(
                        version=version, replicas=replicas).to_dict() if arm else spec.to_dict(), sort_keys=True)]
            # adopt what already runs this exact thing (a resumed rollout, an unchanged arm)
            for info in sorted(same, key=lambda i: i["Name"])[:replicas]:
                keep.add(info["Id"])
                wanted.append((info["Id"], spec.port))
            arm_spec = spec.with_(version=version, replicas=replicas) if arm else spec
            for i in range(len([w for w in same][:replicas]), replicas):
                cname = f"{workload_name(name, arm or None)}-r{rev}-{i + 1}-{secrets.token_hex(2)}"
                cid = self._run(name=cname, image=arm_image, spec=arm_spec,
                                labels=d.labels(arm_spec, rev, arm=arm), alias=workload_name(name, arm or None),
                                port=spec.port, env={"MLOPS_DEPLOYMENT": name, "MLOPS_ARM": arm})
                created.append(cid)
                wanted.append((cid, spec.port))
                events.append(f"started {cname} ({arm_image})")
        if router is not None:
            config = d.router_config(name, router, lambda arm: workload_name(name, arm), spec.port)
            digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
            same_router = [i for i in before if i["Config"]["Labels"].get(d.L_ROLE) == "router"
                           and i["Config"]["Labels"].get("mlops.router-config") == digest]
            if same_router:
                keep.add(same_router[0]["Id"])
                wanted.append((same_router[0]["Id"], d.ROUTER_PORT))
            else:
                self._ensure_image(router.image, progress)
                rname = f"{workload_name(name, 'router')}-r{rev}-{secrets.token_hex(2)}"
                labels = d.labels(spec, rev, arm="router", role="router",
                                  extra={d.L_STABLE: router.stable, "mlops.router-config": digest})
                cid = self._run(name=rname, image=router.image, spec=spec.with_(cpu=None, memory=None, gpus=0,
                                                                                  env={}),
                                labels=labels, alias=workload_name(name, "router"), port=d.ROUTER_PORT,
                                env={"MLOPS_ROUTER_CONFIG": json.dumps(config),
                                     "MLOPS_ADMIN_TOKEN": secrets.token_urlsafe(32)},
                                command=d.ROUTER_COMMAND, volume=rname)
                created.append(cid)
                wanted.append((cid, d.ROUTER_PORT))
                events.append(f"started router {rname}")
        ok, why, ready = self._wait(wanted, deadline, progress, events)
        if ok:
            old = [i for i in self._owned(name) if i["Id"] not in keep and i["Id"] not in created]
            self._remove(old)
            if old:
                events.append(f"removed {len(old)} container(s) of earlier revisions")
            return RolloutResult("healthy", f"{ready}/{len(wanted)} replicas ready in {deadline.elapsed:.1f} s",
                                 ready, len(wanted), tuple(events), deadline.elapsed)
        mine = [i for i in self._owned(name) if i["Id"] in created]
        self._remove(mine)
        events.append(f"removed the {len(mine)} new container(s); " +
                      ("the previous revision kept serving" if had_serving else "nothing was serving before"))
        return RolloutResult("rolled_back" if had_serving else "failed", why, ready, len(wanted), tuple(events),
                             deadline.elapsed)

    def undo(self, name: str, to_spec: DeploymentSpec, revision: Revision, image: str, router: RouterPlan | None,
             deadline_s: float, progress: ProgressFn | None = None) -> RolloutResult:
        return self.apply(to_spec, revision, image, router, deadline_s, progress)

    # -- observe -----------------------------------------------------------------------------------------------
    def status(self, name: str) -> Status:
        infos = self._owned(name)
        if not infos:
            return Status(0, 0, (), "missing", f"no containers of {name} on the engine", observed_at=time.time())
        replicas = []
        for info in sorted(infos, key=lambda i: (i["Config"]["Labels"].get(d.L_ROLE) != "router", i["Name"])):
            lab = info["Config"]["Labels"]
            port = d.ROUTER_PORT if lab.get(d.L_ROLE) == "router" else _spec_port(lab)
            health, detail, address = self._replica_health(info, port)
            replicas.append(ReplicaStatus(id=info["Name"].lstrip("/"), health=health, detail=detail,  # type: ignore[arg-type]
                                          version=lab.get(d.L_VERSION, ""), arm=lab.get(d.L_ARM, ""),
                                          node="local", address=address, started_at=_started(info) or None))
        status = d.summarize(replicas)
        events = tuple(f"{i['Name'].lstrip('/')} restarted {i.get('RestartCount')} times (last exit code "
                       f"{(i.get('State') or {}).get('ExitCode')})" for i in infos if i.get("RestartCount"))
        return Status(status.desired, status.ready, status.replicas, status.state, status.reason, events,
                      observed_at=status.observed_at)

    def scale(self, name: str, replicas: int) -> None:
        infos = self._owned(name)
        routers = [i for i in infos if i["Config"]["Labels"].get(d.L_ROLE) == "router"]
        arm = routers[0]["Config"]["Labels"].get(d.L_STABLE, "") if routers else ""
        current = sorted((i for i in infos if i["Config"]["Labels"].get(d.L_ROLE) == "replica"
                          and i["Config"]["Labels"].get(d.L_ARM) == arm), key=_started)
        if not current:
            raise RolloutFailed(f"{name} has no replicas on the engine to scale", hint=f"`deploy resume {name}`")
        if replicas < len(current):
            self._remove(current[replicas:] if replicas else current)
            return
        model = current[-1]
        lab = model["Config"]["Labels"]
        spec = DeploymentSpec.from_dict(json.loads(lab[d.L_SPEC]))
        for _ in range(len(current), replicas):
            cname = f"{workload_name(name, arm or None)}-r{lab[d.L_REVISION]}-s{secrets.token_hex(3)}"
            self._run(name=cname, image=model["Config"]["Image"], spec=spec,
                      labels={k: v for k, v in lab.items() if k.startswith("mlops.")},
                      alias=workload_name(name, arm or None), port=spec.port,
                      env={"MLOPS_DEPLOYMENT": name, "MLOPS_ARM": arm})

    def restart(self, name: str) -> None:
        """One container after the other: restart it and wait until it is ready again (at most 60 s each)."""
        for info in self._owned(name):
            with d.engine_errors(self.target, f"restarting {info['Name']}"):
                self.api.restart(info["Id"], timeout=STOP_TIMEOUT_S)
            lab = info["Config"]["Labels"]
            port = d.ROUTER_PORT if lab.get(d.L_ROLE) == "router" else _spec_port(lab)
            self._wait([(info["Id"], port)], d.Deadline(60), None, [])

    def logs(self, name: str, follow: bool = False, since: float | None = None) -> Iterator[str]:
        infos = self._owned(name)
        sources = []
        for info in infos:
            stream = functools.partial(self._log_stream, info["Id"], follow, since)
            sources.append((info["Name"].lstrip("/"), stream))
        return d.merged_lines(sources, follow)

    def _log_stream(self, cid: str, follow: bool, since: float | None) -> Iterator[bytes]:
        return self.api.logs(cid, stream=True, follow=follow, stdout=True, stderr=True,
                             since=int(since) if since else None)

    def endpoints(self, name: str) -> list[Endpoint]:
        out = []
        for info in self._owned(name):
            if not (info.get("State") or {}).get("Running"):
                continue
            lab = info["Config"]["Labels"]
            is_router = lab.get(d.L_ROLE) == "router"
            hp = self._host_port(info, d.ROUTER_PORT if is_router else _spec_port(lab))
            if hp is None:
                continue
            url = f"http://{self._probe_host()}:{hp}"
            out.append(Endpoint(url, "router" if is_router else "replica", "" if is_router else lab.get(d.L_VERSION, ""),
                                "" if is_router else lab.get(d.L_ARM, "")))
        return sorted(out, key=lambda e: (e.role != "router", e.url))

    def router_admin(self, name: str) -> tuple[str, str] | None:
        for info in self._owned(name, role="router"):
            if not (info.get("State") or {}).get("Running"):
                continue
            env = dict(e.split("=", 1) for e in info["Config"].get("Env") or [] if "=" in e)
            hp = self._host_port(info, d.ROUTER_PORT)
            if hp and env.get("MLOPS_ADMIN_TOKEN"):
                return f"http://{self._probe_host()}:{hp}", env["MLOPS_ADMIN_TOKEN"]
        return None

    def delete(self, name: str) -> None:
        self._remove(self._owned(name))
        with d.engine_errors(self.target, f"removing the network of {name}"):
            for net in self.api.networks(names=[name], filters={"label": f"{d.LABEL}={name}"}):
                with contextlib.suppress(Exception):
                    self.api.remove_network(net["Id"])


def _started(info: dict[str, Any]) -> float:
    from datetime import datetime

    text = (info.get("State") or {}).get("StartedAt") or ""
    try:
        return datetime.fromisoformat(text[:26].rstrip("Z") + "+00:00").timestamp() if text[:4] > "0001" else 0.0
    except ValueError:
        return 0.0


def _spec_port(labels: dict[str, str]) -> int:
    try:
        return int(json.loads(labels.get(d.L_SPEC) or "{}").get("port", 8080))
    except (ValueError, AttributeError):
        return 8080
