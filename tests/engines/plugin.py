"""pytest plugin of the real engines: session fixtures, per-test scopes, markers, and CI's no-skip rule.

Fixtures (each marks the tests that use it with the engine's marker):
  docker_engine (session)   DockerEngine: host, registry + credentials, base image, stop()/start()/stopped()
  docker_scope              DockerScope: a name prefix + label for this test; everything with either is removed after
  swarm                     the docker_engine, checked to be an active Swarm manager
  kube_cluster (session)    KubeCluster: kubeconfig, node_ip, kubectl, stop_apiserver()/start_apiserver()
  kube_namespace            KubeNamespace: a fresh namespace (deleted after), add_pull_secret(...)
  prometheus                start(scrape_configs, rule_files) -> PrometheusServer, stopped after the test
  promtool                  run promtool: promtool("check", "rules", path)
Engines come from the environment (scripts/infra/up.sh's env.sh) or are started for the session (root on Debian)
and stopped at its end. Under CI=true a skipped engine test fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .common import (
    ENGINE_MARKERS,
    ENV_DOCKER_HOST,
    ENV_KUBECONFIG,
    ENV_RESTARTABLE,
    ENV_STATE,
    EngineGone,
    EngineUnavailable,
    in_ci,
    unavailable,
)
from .docker_engine import DockerEngine, DockerScope, engine_from_env
from .kube import KubeCluster, KubeNamespace, cluster_from_env
from .prometheus import PrometheusServer, prometheus_binary, promtool_binary
from .prometheus import promtool as run_promtool
from .session import SessionEngines

# which engine each fixture needs (for the markers and CI's no-skip rule)
FIXTURE_MARKERS = {
    "docker_engine": "docker", "docker_scope": "docker", "swarm": "swarm",
    "kube_cluster": "kubernetes", "kube_namespace": "kubernetes",
    "prometheus": "prometheus", "promtool": "prometheus", "promtool_path": "prometheus",
}


def pytest_configure(config: pytest.Config) -> None:
    # also in pyproject.toml; registered here too so the plugin works in any pytest session (e.g. pytester's)
    for name in ENGINE_MARKERS:
        config.addinivalue_line("markers", f"{name}: needs a real {name} engine (tests/engines)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            marker = FIXTURE_MARKERS.get(fixture)
            if marker and not item.get_closest_marker(marker):
                item.add_marker(marker)
        if item.get_closest_marker("swarm") and not item.get_closest_marker("docker"):
            item.add_marker("docker")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not (in_ci() and report.skipped and not hasattr(report, "wasxfail")):
        return
    engines = [m for m in ENGINE_MARKERS if item.get_closest_marker(m)]
    if engines:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"CI=true: this {'/'.join(engines)} test must run, but it was skipped: {reason}"


class _Engines:
    """The session's engines: from the environment, else started here on first use."""

    def __init__(self) -> None:
        self.started = SessionEngines()
        self.docker: DockerEngine | None = None
        self.kube: KubeCluster | None = None
        self.errors: dict[str, str] = {}

    def _shared_state(self) -> tuple[Path | None, bool]:
        state = os.environ.get(ENV_STATE)
        return (Path(state) if state else None), os.environ.get(ENV_RESTARTABLE) == "1"

    def get_docker(self) -> DockerEngine:
        if self.docker is None:
            if "docker" in self.errors:
                raise EngineUnavailable(self.errors["docker"])
            try:
                if os.environ.get(ENV_DOCKER_HOST):
                    state, restartable = self._shared_state()
                    self.docker = engine_from_env(dict(os.environ), state / "docker" if state else None, restartable)
                else:
                    env = self.started.docker()
                    self.docker = engine_from_env(env, Path(env["MLOPS_TEST_DOCKER_STATE"]), True)
                self.docker.check_alive()
            except (EngineUnavailable, EngineGone) as exc:
                self.docker = None
                self.errors["docker"] = str(exc)
                raise EngineUnavailable(str(exc)) from None
        return self.docker

    def get_kube(self) -> KubeCluster:
        if self.kube is None:
            if "kubernetes" in self.errors:
                raise EngineUnavailable(self.errors["kubernetes"])
            try:
                if os.environ.get(ENV_KUBECONFIG):
                    state, restartable = self._shared_state()
                    self.kube = cluster_from_env(dict(os.environ), state / "k8s" if state else None, restartable)
                else:
                    if os.environ.get(ENV_DOCKER_HOST):
                        raise EngineUnavailable(f"{ENV_DOCKER_HOST} is set but {ENV_KUBECONFIG} is not: start both "
                                                "with scripts/infra/up.sh, or neither")
                    env = self.started.kube()
                    self.kube = cluster_from_env(env, Path(env["MLOPS_TEST_KUBE_STATE"]), True)
                self.kube.check_alive()
            except (EngineUnavailable, EngineGone) as exc:
                self.kube = None
                self.errors["kubernetes"] = str(exc)
                raise EngineUnavailable(str(exc)) from None
        return self.kube

    def close(self) -> str | None:
        for engine in (self.docker, self.kube):
            if engine is not None:
                engine.close()
        return self.started.close()


@pytest.fixture(scope="session")
def _engines() -> Iterator[_Engines]:
    engines = _Engines()
    yield engines
    error = engines.close()
    if error:
        pytest.fail(f"stopping the session's engines failed: {error}", pytrace=False)


@pytest.fixture(scope="session")
def docker_engine(_engines: _Engines) -> DockerEngine:
    try:
        return _engines.get_docker()
    except EngineUnavailable as exc:
        unavailable(f"no Docker engine: {exc}")


def _ensure_up(engine: DockerEngine | KubeCluster, what: str) -> str | None:
    """After a test: None when the engine answers; else restart it (if we may) and say what happened."""
    try:
        engine.check_alive()
        return None
    except EngineGone as exc:
        gone = str(exc)
    if engine.restartable:
        try:
            engine.start() if isinstance(engine, DockerEngine) else engine.start_apiserver()
        except Exception as exc:
            return f"{gone}; restarting {what} failed: {exc}"
        return f"{gone} (restarted for the next tests)"
    return gone


def _revive(engine: DockerEngine | KubeCluster) -> None:
    """Before a test: an engine an earlier test left down is started again when we may (else the test fails)."""
    message = _ensure_up(engine, "the engine")
    if message and "restarted" not in message:
        pytest.fail(f"the engine is down before the test: {message}", pytrace=False)


@pytest.fixture
def docker_scope(docker_engine: DockerEngine, request: pytest.FixtureRequest) -> Iterator[DockerScope]:
    _revive(docker_engine)
    scope = DockerScope(docker_engine, request.node.name)
    yield scope
    gone = _ensure_up(docker_engine, "the Docker engine")
    errors = scope.cleanup() if docker_engine.ping() else [f"not cleaned up: the engine at {docker_engine.host} is down"]
    if gone:
        pytest.fail(f"the Docker engine went away during {request.node.nodeid} and nobody brought it back: {gone}",
                    pytrace=False)
    if errors:
        pytest.fail("cleaning up after the test failed: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def swarm(docker_engine: DockerEngine) -> DockerEngine:
    _revive(docker_engine)
    info = docker_engine.client().info()
    swarm_info = info.get("Swarm", {})
    if swarm_info.get("LocalNodeState") != "active" or not swarm_info.get("ControlAvailable"):
        unavailable(f"the Docker engine at {docker_engine.host} is no Swarm manager "
                    f"(state {swarm_info.get('LocalNodeState')})")
    return docker_engine


@pytest.fixture(scope="session")
def kube_cluster(_engines: _Engines) -> KubeCluster:
    try:
        return _engines.get_kube()
    except EngineUnavailable as exc:
        unavailable(f"no Kubernetes cluster: {exc}")


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[KubeNamespace]:
    _revive(kube_cluster)
    ns = KubeNamespace(kube_cluster, request.node.name)
    yield ns
    gone = _ensure_up(kube_cluster, "the API server")
    if kube_cluster.ping():
        ns.cleanup()
    if gone:
        pytest.fail(f"the Kubernetes API server went away during {request.node.nodeid} and nobody brought it back: "
                    f"{gone}", pytrace=False)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    try:
        prometheus_binary()
    except EngineUnavailable as exc:
        unavailable(str(exc))
    servers: list[PrometheusServer] = []

    def start(scrape_configs: list[dict[str, Any]], rule_files: list[Path] | None = None,
              evaluation_interval: float = 1.0) -> PrometheusServer:
        server = PrometheusServer(tmp_path / f"prometheus-{len(servers)}", scrape_configs, rule_files,
                                  evaluation_interval)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def promtool_path() -> str:
    try:
        return promtool_binary()
    except EngineUnavailable as exc:
        unavailable(str(exc))


@pytest.fixture
def promtool(promtool_path: str) -> Callable[..., Any]:
    return run_promtool
