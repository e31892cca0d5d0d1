"""The Docker engine, registry and Swarm of the tests, and the per-test scope that cleans up what a test made."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import ENV_RESTARTABLE, EngineGone, EngineUnavailable, pid_alive, run_script, wait_until

DOCKER_CLI = "/usr/bin/docker"  # Debian's CLI, the engine's own release (/usr/local/bin/docker may be another)
SCOPE_LABEL = "mlops-test.scope"


@dataclass
class DockerEngine:
    """A running engine: DOCKER_HOST, the registry and its credentials, the base image; stop/start when allowed."""

    host: str  # unix:///.../docker.sock
    registry: str  # 127.0.0.1:PORT (plain http, htpasswd auth)
    registry_user: str
    registry_password_file: Path
    base_image: str
    state: Path | None = None  # the scripts' state dir (pid files); None for engines we know only by address
    restartable: bool = False  # tests may stop and restart it (this session owns it, or the owner allows it)
    _clients: list[Any] = field(default_factory=list, repr=False)

    @property
    def registry_password(self) -> str:
        return self.registry_password_file.read_text().strip()

    @property
    def auth_config(self) -> dict[str, str]:
        """For the SDK's push/pull(auth_config=...)."""
        return {"username": self.registry_user, "password": self.registry_password}

    def env(self) -> dict[str, str]:
        """Environment for Debian's docker CLI against this engine; its client config is the scripts' own (logged in
        to the registry), never ~/.docker."""
        return {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self._client_config())}

    def _client_config(self) -> Path:
        base = self.state / "client" if self.state else Path(f"/tmp/mlops-test-docker-config-{os.getuid()}")  # noqa: S108
        base.mkdir(parents=True, exist_ok=True)
        return base

    def client(self, timeout: int = 60) -> Any:
        """A docker SDK client (closed at session end)."""
        import docker

        c = docker.DockerClient(base_url=self.host, timeout=timeout, version="auto")
        self._clients.append(c)
        return c

    def cli(self, *args: str, check: bool = True, timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run Debian's docker CLI against this engine."""
        return subprocess.run([DOCKER_CLI, *args], env={**os.environ, **self.env()}, capture_output=True, text=True,
                              timeout=timeout, check=check, input=input)

    # ---- liveness and the "engine goes away" controls
    def _dockerd_pid(self) -> int | None:
        if self.state is None:
            return None
        return pid_alive(self.state / "dockerd.pid", str(self.state))

    def ping(self, timeout: float = 3) -> bool:
        import docker

        try:
            c = docker.DockerClient(base_url=self.host, timeout=int(max(1, timeout)))
            try:
                return bool(c.ping())
            finally:
                c.close()
        except Exception:
            return False

    def check_alive(self) -> None:
        """EngineGone, saying what happened, when the engine does not answer (its daemon exited, a hung socket)."""
        if self.ping():
            return
        where = f" (log: {self.state.parent / 'logs' / 'dockerd.log'})" if self.state else ""
        if self.state is not None and self._dockerd_pid() is None:
            raise EngineGone(f"the Docker engine at {self.host} is gone: dockerd is not running{where}")
        raise EngineGone(f"the Docker engine at {self.host} does not answer{where}")

    def require_restartable(self) -> None:
        if not self.restartable:
            raise EngineUnavailable(
                f"the Docker engine at {self.host} is shared (not started by this session): stopping it would break "
                f"its other users; set {ENV_RESTARTABLE}=1 where that is fine (.ci/run does)")

    def stop(self) -> None:
        """Stop dockerd (SIGTERM, as a crash-free shutdown would); containers stop with it, the registry stays up."""
        self.require_restartable()
        assert self.state is not None
        run_script("docker-down.sh", "--daemon-only", env={"MLOPS_INFRA_STATE": str(self.state.parent)}, timeout=120)
        wait_until(lambda: not self.ping(1), 30, "dockerd to stop answering")

    def kill(self) -> None:
        """SIGKILL dockerd: the engine dies without cleaning up (a crash)."""
        self.require_restartable()
        pid = self._dockerd_pid()
        if pid:
            os.kill(pid, 9)
            wait_until(lambda: self._dockerd_pid() is None, 30, f"dockerd {pid} to exit")

    def start(self) -> None:
        """Start dockerd again (docker-up.sh is idempotent) and wait until the Swarm node is Ready."""
        self.require_restartable()
        assert self.state is not None
        run_script("docker-up.sh", env={"MLOPS_INFRA_STATE": str(self.state.parent), "MLOPS_INFRA_BASE_IMAGE": "0"},
                   timeout=300)
        wait_until(self.ping, 60, "dockerd to answer again")

    @contextlib.contextmanager
    def stopped(self) -> Iterator[None]:
        """`with engine.stopped():` dockerd is down inside the block and up again after it, even on failure."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    # ---- registry over its HTTP API (with our credentials)
    def registry_request(self, path: str, method: str = "GET", auth: tuple[str, str] | None = None,
                         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        user, password = auth or (self.registry_user, self.registry_password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        req = urllib.request.Request(f"http://{self.registry}{path}", method=method,
                                     headers={"Authorization": f"Basic {token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def registry_tags(self, repo: str) -> list[str]:
        status, _, body = self.registry_request(f"/v2/{repo}/tags/list")
        if status == 404:
            return []
        return list(json.loads(body).get("tags") or [])

    def close(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients.clear()


def engine_from_env(env: dict[str, str], state: Path | None, restartable: bool) -> DockerEngine:
    missing = [k for k in ("MLOPS_TEST_DOCKER_HOST", "MLOPS_TEST_REGISTRY", "MLOPS_TEST_REGISTRY_USER",
                           "MLOPS_TEST_REGISTRY_PASSWORD_FILE") if not env.get(k)]
    if missing:
        raise EngineUnavailable(f"MLOPS_TEST_DOCKER_HOST is set but {', '.join(missing)} is not (source up.sh's env.sh)")
    return DockerEngine(host=env["MLOPS_TEST_DOCKER_HOST"], registry=env["MLOPS_TEST_REGISTRY"],
                        registry_user=env["MLOPS_TEST_REGISTRY_USER"],
                        registry_password_file=Path(env["MLOPS_TEST_REGISTRY_PASSWORD_FILE"]),
                        base_image=env.get("MLOPS_TEST_BASE_IMAGE", "mlops-desktop/python-base:bookworm"),
                        state=state, restartable=restartable)


class DockerScope:
    """One test's corner of a shared engine: a unique name prefix and label; cleanup() removes what carries either.

    Name everything a test creates with `scope.name("web")` (containers, services, networks, volumes, image
    repositories: `scope.image("app", "1")` is REGISTRY/PREFIX-app:1) or label it with `scope.labels`.
    """

    def __init__(self, engine: DockerEngine, test_name: str) -> None:
        self.engine = engine
        slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:24].strip("-")
        self.id = secrets.token_hex(3)
        self.prefix = f"mlt-{self.id}-{slug}"[:40].rstrip("-")
        self.labels = {SCOPE_LABEL: self.id}
        self.client = engine.client()

    def name(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def image(self, what: str, tag: str = "latest") -> str:
        """A registry reference inside this scope."""
        return f"{self.engine.registry}/{self.name(what)}:{tag}"

    def _ours(self, name: str, labels: dict[str, str] | None) -> bool:
        return name.lstrip("/").startswith(self.prefix) or (labels or {}).get(SCOPE_LABEL) == self.id

    def cleanup(self) -> list[str]:
        """Remove services, containers, networks, volumes, secrets, configs and images of this scope; what failed."""
        errors: list[str] = []
        c = self.engine.client(timeout=30)

        def each(kind: str, items: Any, remove: Any) -> None:
            for obj in items:
                try:
                    remove(obj)
                except Exception as exc:  # keep going: clean up as much as possible
                    if getattr(exc, "status_code", None) != 404:
                        errors.append(f"{kind} {getattr(obj, 'name', obj)}: {exc}")

        swarm = c.info().get("Swarm", {}).get("LocalNodeState") == "active"
        if swarm:
            each("service", [s for s in c.services.list() if self._ours(s.name, s.attrs["Spec"].get("Labels"))],
                 lambda s: s.remove())
        each("container", [x for x in c.containers.list(all=True) if self._ours(x.name, x.labels)],
             lambda x: x.remove(force=True, v=True))
        if swarm:
            # a removed service's tasks go away asynchronously; their networks only after them
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not [x for x in c.containers.list(all=True) if self._ours(x.name, x.labels)]
                           and not [x for x in c.containers.list(all=True, filters={"label": "com.docker.swarm.service.name"})
                                    if x.labels.get("com.docker.swarm.service.name", "").startswith(self.prefix)],
                           30, "the scope's service tasks to go")
            each("secret", [x for x in c.secrets.list() if self._ours(x.name, x.attrs["Spec"].get("Labels"))],
                 lambda x: x.remove())
            each("config", [x for x in c.configs.list() if self._ours(x.name, x.attrs["Spec"].get("Labels"))],
                 lambda x: x.remove())
        each("network", [n for n in c.networks.list() if self._ours(n.name, n.attrs.get("Labels"))],
             lambda n: n.remove())
        each("volume", [v for v in c.volumes.list() if self._ours(v.name, v.attrs.get("Labels"))],
             lambda v: v.remove(force=True))
        for img in c.images.list():
            tags = [t for t in img.tags if self.prefix in t.split("/")[-1]]
            if tags or (img.labels or {}).get(SCOPE_LABEL) == self.id:
                each("image", tags or [img.id], lambda ref: c.images.remove(ref, force=True, noprune=False))
        for repo in self._registry_repos():
            for tag in self.engine.registry_tags(repo):
                status, headers, _ = self.engine.registry_request(
                    f"/v2/{repo}/manifests/{tag}", method="HEAD",
                    headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
                digest = headers.get("Docker-Content-Digest")
                if status == 200 and digest:
                    self.engine.registry_request(f"/v2/{repo}/manifests/{digest}", method="DELETE")
        c.close()
        return errors

    def _registry_repos(self) -> list[str]:
        status, _, body = self.engine.registry_request("/v2/_catalog?n=1000")
        if status != 200:
            return []
        return [r for r in json.loads(body).get("repositories") or [] if r.split("/")[-1].startswith(self.prefix)]
