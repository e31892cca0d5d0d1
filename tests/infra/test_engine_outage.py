"""An engine that goes away mid-test: the fixtures stop and restart dockerd and the API server, and report it."""

from __future__ import annotations

import time

import pytest
from apps import build, get_json, push, stream_errors
from engines.common import EngineGone, EngineUnavailable, unavailable, wait_until
from engines.plugin import _ensure_up


@pytest.fixture
def restartable_docker(docker_engine):
    try:
        docker_engine.require_restartable()
    except EngineUnavailable as exc:
        unavailable(str(exc))
    return docker_engine


@pytest.fixture
def restartable_kube(kube_cluster):
    try:
        kube_cluster.require_restartable()
    except EngineUnavailable as exc:
        unavailable(str(exc))
    return kube_cluster


@pytest.mark.swarm
def test_dockerd_stopped_mid_test_fails_fast_and_comes_back(restartable_docker, docker_scope):
    import docker

    engine = restartable_docker
    c = docker_scope.client
    name = docker_scope.name("keeps")
    c.services.create(engine.base_image, ["python3", "-c", "import time; time.sleep(3600)"], name=name,
                      labels=docker_scope.labels)
    wait_until(lambda: c.services.get(name).tasks(filters={"desired-state": "running"}) and any(
        t["Status"]["State"] == "running" for t in c.services.get(name).tasks()), 60, "the service's task to run")
    with engine.stopped():
        with pytest.raises(EngineGone, match="dockerd is not running"):
            engine.check_alive()
        started = time.monotonic()
        with pytest.raises(docker.errors.DockerException, match="No such file or directory|Connection refused"):
            docker.DockerClient(base_url=engine.host, timeout=3).ping()
        assert time.monotonic() - started < 5  # a missing socket, not a hang
    engine.check_alive()
    after = engine.client()
    assert after.info()["Swarm"]["LocalNodeState"] == "active"
    # the Swarm restarts the service's task that died with the engine
    wait_until(lambda: any(t["Status"]["State"] == "running" for t in after.services.get(name).tasks()), 90,
               "the service's task to run again after the restart")


@pytest.mark.docker
def test_an_engine_left_stopped_is_reported_and_restarted(restartable_docker):
    restartable_docker.stop()
    message = _ensure_up(restartable_docker, "the Docker engine")
    assert message and "dockerd is not running" in message and "restarted" in message
    restartable_docker.check_alive()
    assert _ensure_up(restartable_docker, "the Docker engine") is None


@pytest.mark.kubernetes
def test_apiserver_stopped_mid_test_pods_keep_serving(restartable_kube, kube_namespace, docker_engine, docker_scope):
    from urllib3.exceptions import MaxRetryError

    ns = kube_namespace
    ref = docker_scope.image("outage", "v1")
    build(docker_scope.client, docker_engine.base_image, ref, docker_scope.labels)
    assert not stream_errors(push(docker_scope.client, ref, docker_engine.auth_config))
    ns.add_pull_secret(docker_engine.registry, docker_engine.registry_user, docker_engine.registry_password,
                       default_service_account=True)
    ns.apps.create_namespaced_deployment(ns.name, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "app"}}, "template": {
            "metadata": {"labels": {"app": "app"}},
            "spec": {"containers": [{"name": "app", "image": ref, "ports": [{"containerPort": 8080}]}]}}}})
    ns.core.create_namespaced_service(ns.name, {"metadata": {"name": "app"}, "spec": {
        "selector": {"app": "app"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    wait_until(lambda: (ns.apps.read_namespaced_deployment("app", ns.name).status.available_replicas or 0) == 1,
               180, "the replica to be available")
    url = f"http://{ns.core.read_namespaced_service('app', ns.name).spec.cluster_ip}/"
    wait_until(lambda: get_json(url), 30, "the ClusterIP to answer")
    with restartable_kube.apiserver_stopped():
        with pytest.raises(EngineGone, match="kube-apiserver is not running"):
            restartable_kube.check_alive()
        started = time.monotonic()
        with pytest.raises(MaxRetryError):
            restartable_kube.core().list_namespaced_pod(ns.name, _request_timeout=3)
        assert time.monotonic() - started < 30
        assert get_json(url)["version"] == "v1"  # the node and kube-proxy's rules outlive the control plane
    assert (ns.apps.read_namespaced_deployment("app", ns.name).status.available_replicas or 0) == 1


@pytest.mark.swarm
def test_dockerd_killed_is_reported_and_restarts(restartable_docker):
    restartable_docker.kill()  # a crash: no clean shutdown, containerd and the shims are left behind
    with pytest.raises(EngineGone, match="dockerd is not running"):
        restartable_docker.check_alive()
    restartable_docker.start()
    restartable_docker.check_alive()
    info = restartable_docker.client().info()
    assert info["Swarm"]["LocalNodeState"] == "active" and info["Swarm"]["ControlAvailable"]


@pytest.mark.docker
def test_a_second_set_of_engines_is_refused_while_these_run(docker_engine, tmp_path):
    import subprocess

    from engines.common import INFRA, can_start_engines

    if docker_engine.state is None or can_start_engines():
        unavailable("needs root and engines this run knows the state of (their owner is recorded by state dir)")
    other = tmp_path / "other-state"
    proc = subprocess.run(["bash", str(INFRA / "docker-up.sh")], env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                          "MLOPS_INFRA_STATE": str(other)}, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"engines of {docker_engine.state.parent} already run on this host" in proc.stderr
    assert not (other / "docker").exists()  # nothing was started or created for the refused state
