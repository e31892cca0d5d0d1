"""The Kubernetes node really runs pods: an image from the local registry (pull secret), a Deployment answering
through a ClusterIP and a NodePort from the host; without the pull secret the pull is refused."""

from __future__ import annotations

import pytest
from apps import build, get_json, push, stream_errors
from engines.common import wait_until

pytestmark = [pytest.mark.kubernetes, pytest.mark.docker]


def deployment(image: str, replicas: int = 2, pull_secret: str | None = "mlops-registry") -> dict:
    spec: dict = {"containers": [{"name": "app", "image": image, "imagePullPolicy": "Always",
                                  "ports": [{"containerPort": 8080, "name": "http"}],
                                  "readinessProbe": {"httpGet": {"path": "/health", "port": "http"},
                                                     "periodSeconds": 1}}],
                  "terminationGracePeriodSeconds": 2}
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "app"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "app"}},
                     "template": {"metadata": {"labels": {"app": "app"}}, "spec": spec}}}


@pytest.fixture
def app_image(docker_engine, docker_scope):
    ref = docker_scope.image("kapp", "v1")
    build(docker_scope.client, docker_engine.base_image, ref, docker_scope.labels)
    assert not stream_errors(push(docker_scope.client, ref, docker_engine.auth_config))
    return ref


def available(ns, replicas: int) -> bool:
    d = ns.apps.read_namespaced_deployment("app", ns.name)
    return (d.status.available_replicas or 0) == replicas and (d.status.updated_replicas or 0) == replicas


def test_deployment_answers_through_cluster_ip_and_node_port(kube_cluster, kube_namespace, docker_engine, app_image):
    ns = kube_namespace
    ns.add_pull_secret(docker_engine.registry, docker_engine.registry_user, docker_engine.registry_password)
    ns.apps.create_namespaced_deployment(ns.name, deployment(app_image))
    for name, kind in (("app", "ClusterIP"), ("app-np", "NodePort")):
        ns.core.create_namespaced_service(ns.name, {"metadata": {"name": name}, "spec": {
            "type": kind, "selector": {"app": "app"}, "ports": [{"port": 80, "targetPort": "http"}]}})
    wait_until(lambda: available(ns, 2), 180, "2 available replicas")
    pods = ns.core.list_namespaced_pod(ns.name).items
    assert all(p.status.phase == "Running" and p.spec.node_name for p in pods)
    cluster_ip = ns.core.read_namespaced_service("app", ns.name).spec.cluster_ip
    node_port = ns.core.read_namespaced_service("app-np", ns.name).spec.ports[0].node_port

    # kube-proxy programs new endpoints ~1 s after they are ready: wait until both replicas answer
    def both_behind(url: str) -> set[str]:
        seen = {get_json(url)["host"] for _ in range(12)}
        return seen if len(seen) == 2 else set()
    hosts = wait_until(lambda: both_behind(f"http://{cluster_ip}/"), 30, "both replicas behind the ClusterIP")
    assert hosts == {p.metadata.name for p in pods}
    for host in (kube_cluster.node_ip, "127.0.0.1"):
        answer = wait_until(lambda host=host: get_json(f"http://{host}:{node_port}/x"), 30, f"NodePort on {host}")
        assert answer["version"] == "v1" and answer["path"] == "/x"
    log = ns.core.read_namespaced_pod_log(pods[0].metadata.name, ns.name)
    assert "app v1 listening on 8080" in log


def test_pull_without_credentials_is_refused(kube_namespace, app_image):
    ns = kube_namespace
    ns.apps.create_namespaced_deployment(ns.name, deployment(app_image, replicas=1, pull_secret=None))

    def pull_error():
        for pod in ns.core.list_namespaced_pod(ns.name).items:
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting
                if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                    return waiting
        return None
    waiting = wait_until(pull_error, 90, "the pull to be refused")
    events = " ".join(e.message or "" for e in ns.core.list_namespaced_event(ns.name).items)
    assert "401" in events or "unauthorized" in events.lower() or "authorization" in events.lower(), events[-500:]
    assert waiting.reason in ("ErrImagePull", "ImagePullBackOff")
