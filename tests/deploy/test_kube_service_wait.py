"""A rollout's "healthy" waits for the Service URL this machine is given (kube-proxy programs a NodePort late).

The URL here is a real HTTP server on 127.0.0.1 that starts answering late, or never; what the Service lookup
returns is given in (kube_status.endpoints); the rollouts on the real cluster are in test_deploy_kubernetes.py.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from mlops_desktop.deploy import kube_status
from mlops_desktop.deploy import kubernetes as kb
from mlops_desktop.deploy.kubernetes import KubernetesBackend
from mlops_desktop.deploy.models import Endpoint, Target


class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/v2/health/ready" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def backend(monkeypatch):
    port = free_port()
    monkeypatch.setattr(kube_status, "endpoints",
                        lambda b, name: [Endpoint(url=f"http://127.0.0.1:{port}", role="replica")])
    return KubernetesBackend(Target(name="k", kind="kubernetes")), port


def test_healthy_waits_until_the_url_answers(backend):
    b, port = backend
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Ready)
    starter = threading.Timer(1.0, server.serve_forever)  # the NodePort "appears" 1 s after the pods are ready
    starter.start()
    steps = []
    try:
        t0 = time.monotonic()
        note = b.wait_service("churn", time.monotonic() + 60, lambda f, m: steps.append(m))
        waited = time.monotonic() - t0
    finally:
        server.shutdown()
        server.server_close()
    assert note == "" and 0.9 < waited < 5, (note, waited)
    assert "answers" in steps[-1] and str(port) in steps[-1]


def test_a_url_that_never_answers_is_said_on_the_result(backend, monkeypatch):
    b, port = backend
    monkeypatch.setattr(kb, "SERVICE_WAIT_MIN_S", 0.5)
    steps = []
    t0 = time.monotonic()
    note = b.wait_service("churn", time.monotonic() + 0.1, lambda f, m: steps.append(m))
    assert time.monotonic() - t0 < 3
    assert f"127.0.0.1:{port} did not answer within" in note and "pods are ready" in note
    assert "did not answer" in steps[-1]


def test_cluster_ip_services_are_not_waited_for(monkeypatch):
    monkeypatch.setattr(kube_status, "endpoints", lambda b, name: pytest.fail("a ClusterIP is not reachable here"))
    b = KubernetesBackend(Target(name="k", kind="kubernetes", options={"service_type": "ClusterIP"}))
    assert b.wait_service("churn", time.monotonic() + 60, lambda f, m: None) == ""
