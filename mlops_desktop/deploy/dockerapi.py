"""What the local and Swarm backends share: an engine client with timeouts, engine errors in words, our readiness
probe, labels, the router's config, and merged log streams. The docker SDK is imported only in here, lazily."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from mlops_desktop.deploy.backend import DEFAULT_BIND, READY_PATH, EngineUnreachable, RolloutFailed
from mlops_desktop.deploy.models import ReplicaStatus, Status
from mlops_desktop.errors import MlopsError

if TYPE_CHECKING:
    from mlops_desktop.deploy.models import DeploymentSpec, RouterPlan, Target

LABEL = "mlops.deployment"          # every object a deployment owns carries it
L_REVISION = "mlops.revision"
L_ARM = "mlops.arm"                 # '' for a deployment without a router
L_ROLE = "mlops.role"               # replica | router
L_VERSION = "mlops.version"
L_MODEL = "mlops.model"
L_DESIRED = "mlops.desired"
L_SPEC = "mlops.spec"               # the spec as applied (JSON): lets scale/restart recreate a replica
L_STABLE = "mlops.stable"
ROUTER_PORT = 8090
ROUTER_STATE = "/var/lib/mlops"   # the image family's state dir (owned by its user); a volume per router
API_TIMEOUT_S = 20


# The Engine API version we speak (Docker 20.10's). Pinned, so that creating a client opens no connection (the
# SDK's version negotiation connects in its constructor and, against an absent engine, leaks its session); newer
# engines serve older API versions. An unreachable engine is then found by the first call, in engine_errors().
API_VERSION = "1.41"


def client(target: Target, timeout: int = API_TIMEOUT_S) -> Any:
    """A docker SDK client for the target's engine (its DOCKER_HOST, else the environment's)."""
    import docker

    try:
        if target.address:
            return docker.DockerClient(base_url=target.address, timeout=timeout, version=API_VERSION)
        return docker.from_env(timeout=timeout, version=API_VERSION)
    except docker.errors.DockerException as exc:
        raise EngineUnreachable(f"the Docker engine of target {target.name!r} cannot be reached: {_words(exc)}",
                                hint="is dockerd running? `targets check " + target.name + "`") from None


def preflight(target: Target) -> None:
    """A unix socket that is not there: unreachable, said before any connection is tried (the SDK leaks the socket
    of a failed unix connect)."""
    import os

    address = target.address or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    if address.startswith("unix://") and not os.path.exists(address.removeprefix("unix://")):
        raise EngineUnreachable(f"the Docker engine of target {target.name!r} cannot be reached: its socket "
                                f"{address.removeprefix('unix://')} does not exist",
                                hint="is dockerd running? `targets check " + target.name + "`")


def _words(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("Connection refused", "No such file or directory", "Read timed out", "timed out",
                   "Connection aborted", "Name or service not known", "Permission denied"):
        if marker in text:
            return marker.lower()
    explanation = getattr(exc, "explanation", None)
    if explanation:
        return str(explanation)[:300]
    return text.splitlines()[0][:300] if text else type(exc).__name__


@contextlib.contextmanager
def engine_errors(target: Target, doing: str) -> Iterator[None]:
    """Engine failures as our errors: unreachable (connection, timeout) vs refused (the engine said no)."""
    import docker
    import requests

    try:
        yield
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError) as exc:
        raise EngineUnreachable(f"the Docker engine of target {target.name!r} stopped answering while {doing}: "
                                f"{_words(exc)}", hint="the state is unknown; run the action again to resume") \
            from None
    except docker.errors.NotFound as exc:
        raise RolloutFailed(f"{doing}: the engine has no such object: {_words(exc)}") from None
    except docker.errors.APIError as exc:
        if exc.response is not None and exc.response.status_code in (502, 503, 504):
            raise EngineUnreachable(f"the Docker engine of target {target.name!r} is unavailable while {doing}: "
                                    f"{_words(exc)}") from None
        raise RolloutFailed(f"the engine refused {doing}: {_words(exc)}") from None
    except docker.errors.DockerException as exc:
        if "Connection" in str(exc) or "timed out" in str(exc):
            raise EngineUnreachable(f"the Docker engine of target {target.name!r} stopped answering while "
                                    f"{doing}: {_words(exc)}") from None
        raise RolloutFailed(f"{doing}: {_words(exc)}") from None


def probe(host: str, port: int, path: str = READY_PATH, timeout: float = 1.0) -> tuple[bool, str]:
    """OUR readiness check: GET path answers 200 (else what it answered, or why it could not be reached)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read(4096)
        if resp.status == 200:
            return True, "ready"
        return False, f"{path} answered {resp.status}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{path} not answering ({type(exc).__name__}: {exc})"[:200]
    finally:
        conn.close()


def labels(spec: DeploymentSpec, revision: int, *, arm: str = "", role: str = "replica", version: int | None = None,
           model: str | None = None, replicas: int | None = None, extra: dict[str, str] | None = None
           ) -> dict[str, str]:
    out = {LABEL: spec.name, L_REVISION: str(revision), L_ARM: arm, L_ROLE: role,
           L_VERSION: str(spec.version if version is None else version), L_MODEL: model or spec.model,
           L_DESIRED: str(spec.replicas if replicas is None else replicas)}
    if role == "replica":
        out[L_SPEC] = json.dumps(spec.to_dict(), sort_keys=True)
    out.update(extra or {})
    return out


def target_labels(target: Target) -> dict[str, str]:
    """The target's own labels (option "labels"), added to everything it creates (team, cost centre, test scope)."""
    raw = target.option("labels") or {}
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def bind_address(target: Target) -> str:
    return str(target.option("bind") or DEFAULT_BIND)


def env_list(spec: DeploymentSpec, extra: dict[str, str] | None = None) -> list[str]:
    env = {**spec.env, **(extra or {})}
    return [f"{k}={v}" for k, v in sorted(env.items())]


def router_config(name: str, plan: RouterPlan, backend_host: Callable[[str], str], port: int) -> dict[str, Any]:
    """The router's config document (router_config.py's format): one arm per version, each reached by the name
    the engine's DNS gives the arm's replicas, listening on all interfaces of its container."""
    arms = [{"name": a.arm, "weight": a.weight, "version": str(a.version),
             "backends": [f"{backend_host(a.arm)}:{port}"]} for a in plan.arms]
    doc: dict[str, Any] = {"name": name, "host": "0.0.0.0", "port": ROUTER_PORT, "stable": plan.stable,  # noqa: S104
                           "arms": arms, "insecure": True, "state_dir": f"{ROUTER_STATE}/router",
                           "health": {"interval_s": 0.5, "timeout_s": 1.0, "fail_after": 2, "rise_after": 1}}
    if plan.sticky_header:
        doc["sticky_header"] = plan.sticky_header
    if plan.shadow_arm:
        doc["shadow"] = {"arm": plan.shadow_arm, "percent": plan.shadow_percent,
                         "enabled": plan.shadow_percent > 0}
    return doc


ROUTER_COMMAND = ["python3", "-m", "mlops_desktop.serving.router"]  # in every image of the family


def merged_lines(sources: Sequence[tuple[str, Callable[[], Iterator[bytes]]]], follow: bool,
                 stop: threading.Event | None = None) -> Iterator[str]:
    """Lines of several log streams, each prefixed `[id] `, as they arrive (one reader thread per stream).
    Closing the iterator (or `stop`) closes the engine's streams, so a `--follow` reader leaves no thread behind."""
    if not sources:
        return
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue(maxsize=10_000)
    stop = stop or threading.Event()
    streams: list[Any] = []

    def read(prefix: str, open_stream: Callable[[], Iterator[bytes]]) -> None:
        buf = b""
        try:
            stream = open_stream()
            streams.append(stream)
            for chunk in stream:
                if stop.is_set():
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    lines.put((prefix, line.decode("utf-8", "replace").rstrip("\r")))
            if buf:
                lines.put((prefix, buf.decode("utf-8", "replace")))
        except Exception as exc:  # a stream that breaks ends with a line saying why, never a traceback
            if not stop.is_set():
                lines.put((prefix, f"(log stream ended: {_words(exc)})"))
        finally:
            lines.put((prefix, None))

    threads = [threading.Thread(target=read, args=s, daemon=True, name=f"deploy-logs-{s[0]}") for s in sources]
    for t in threads:
        t.start()
    open_count = len(threads)
    try:
        while open_count:
            try:
                prefix, line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                open_count -= 1
                continue
            yield f"[{prefix}] {line}"
    finally:
        stop.set()
        for stream in list(streams):
            close = getattr(stream, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        for t in threads:
            t.join(2)


class Deadline:
    """A rollout's deadline on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + seconds

    @property
    def left(self) -> float:
        return self.end - time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def passed(self) -> bool:
        return time.monotonic() >= self.end


def check_image_ref(image: str) -> str:
    """An image reference as the engine takes it (no spaces, no option-looking text)."""
    if not image or image.startswith("-") or any(c.isspace() for c in image) or len(image) > 512:
        raise MlopsError(f"invalid image reference {image!r}")
    return image


def summarize(replicas: list[ReplicaStatus]) -> Status:
    """Desired/ready over the model replicas; the router must be ready too for `healthy`."""
    model = [r for r in replicas if r.arm != "router"]
    routers = [r for r in replicas if r.arm == "router"]
    ready = sum(r.health == "ready" for r in model)
    desired = len(model)
    router_ok = all(r.health == "ready" for r in routers)
    if desired == 0:
        state, reason = "stopped", "scaled to zero"
    elif ready == desired and router_ok:
        state, reason = "healthy", f"{ready}/{desired} replicas ready" + (" behind the router" if routers else "")
    elif ready == 0:
        state, reason = "failed", "; ".join(f"{r.id}: {r.detail}" for r in model[:3])
    else:
        bad = [r for r in model if r.health != "ready"] + [r for r in routers if r.health != "ready"]
        state, reason = "degraded", f"{ready}/{desired} ready; " + "; ".join(f"{r.id}: {r.detail}" for r in bad[:3])
    return Status(desired, ready, tuple(replicas), state, reason, observed_at=time.time())  # type: ignore[arg-type]
