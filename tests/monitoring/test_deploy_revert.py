"""Automatic revert on a real deployment: the deploy service's local and Swarm targets on the real engine; revision 2
(a version that answers 500 while its probes say ready, planted) serves; the monitor scrapes the replicas' /metrics,
the rule fires, revision 2 is flagged alerting and the service reverts to revision 1, recorded with the alert."""

from __future__ import annotations

import io
import secrets
import tarfile
import threading
import time
from pathlib import Path

import pytest
import requests

from mlops_desktop import audit
from mlops_desktop.errors import MlopsError
from mlops_desktop.monitoring import revert, targets
from mlops_desktop.monitoring.alerts import AlertStore
from mlops_desktop.monitoring.monitor import Monitor
from mlops_desktop.monitoring.rules import Rule
from tests.deploy.conftest import deployment_name, register_versions

IMAGE = Path(__file__).parent / "image" / "metrics_server.py"


@pytest.fixture(scope="module")
def metrics_images(docker_engine):
    client = docker_engine.client()
    tag = f"mlt-monitoring-{secrets.token_hex(3)}"
    made = {}
    for key, (version, mode) in {"ok": ("1", "ok"), "fail": ("2", "fail")}.items():
        dockerfile = (f"FROM {docker_engine.base_image}\nCOPY metrics_server.py /srv/server.py\n"
                      f"ENV VERSION={version} MODE={mode}\nCMD [\"python3\", \"-u\", \"/srv/server.py\"]\n")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for arcname, data in (("Dockerfile", dockerfile.encode()), ("metrics_server.py", IMAGE.read_bytes())):
                info = tarfile.TarInfo(arcname)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        buf.seek(0)
        ref = f"{tag}:{key}"
        client.images.build(fileobj=buf, custom_context=True, tag=ref, rm=True, labels={"mlops-test.monitoring": tag})
        made[key] = ref
    yield made
    for ref in made.values():
        try:
            client.images.remove(ref, force=True)
        except Exception:  # noqa: S110 - best effort
            pass


def revert_under_load(ws, name, urls, deadline_s):
    """Load on the deployment while the monitor watches; (first 500, first answer of version 1), monotonic."""
    stop = threading.Event()
    answers: list[tuple[float, int, str]] = []

    def load() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    r = s.post(urls()[0] + "/invocations", json={"inputs": [[1]]}, timeout=5)
                    answers.append((time.monotonic(), r.status_code, r.json().get("version", "")))
                except (OSError, ValueError, IndexError, MlopsError):  # mid-revert: no endpoint for a moment
                    time.sleep(0.1)
                time.sleep(0.02)

    t0 = time.monotonic()
    loader = threading.Thread(target=load, daemon=True)
    with Monitor(ws, name, interval_s=1.0, host_interval_s=0) as mon:
        loader.start()
        deadline = time.monotonic() + deadline_s
        while not any(code == 200 and v == "1" for t, code, v in answers if t > t0):
            assert time.monotonic() < deadline, (mon.transitions, answers[-5:])
            time.sleep(0.1)
        stop.set()
        loader.join(20)
    first_error = min(t for t, code, _ in answers if code == 500)
    back = min(t for t, code, v in answers if code == 200 and v == "1")
    return first_error, back


@pytest.fixture(params=["local", "swarm"])
def target(request, docker_scope):
    """(kind, engine address) of the target: a local container engine, or the single-node Swarm."""
    if request.param == "swarm":
        return "swarm", request.getfixturevalue("swarm").host
    return "local", docker_scope.engine.host


def test_a_failing_revision_is_reverted_automatically(ws, tmp_path, docker_scope, metrics_images, target):
    from mlops_desktop.deploy import DeploymentService
    from mlops_desktop.deploy.images import GivenImages

    register_versions(ws, tmp_path, count=2)
    svc = DeploymentService(ws, images=GivenImages({("churn", 1): metrics_images["ok"],
                                                    ("churn", 2): metrics_images["fail"]}))
    kind, address = target
    svc.add_target("here", kind, address=address, options={"labels": docker_scope.labels})
    name = deployment_name(docker_scope)
    assert svc.create(name, "here", "churn/1", reason="first", deadline_s=90).outcome == "healthy"
    assert svc.update(name, "churn/2", reason="new model", deadline_s=90).outcome == "healthy"  # ready, but 500s
    dep = targets.resolve(ws, name)
    assert dep.kind == "deploy" and dep.model == "churn" and dep.targets
    assert revert.stable_version(ws, name)["to"] == "1"
    assert name in targets.known_names(ws)
    AlertStore(ws).add_rule(Rule("errors", "error_rate > 0.05", action="revert", severity="critical"))
    first_error, back = revert_under_load(ws, name, lambda: [e.url for e in svc.endpoints(name)
                                                             if e.role in ("router", "replica")], 90)
    history = svc.history(name)
    assert history[-1].action == "revert" and history[-1].version == 1
    [alert] = AlertStore(ws).alerts(deployment=name)
    assert alert.action == "reverted to 1"
    assert next(r for r in history if r.number == 2).alerting == str(alert.id)
    events = [e for e in audit.events(ws.db) if e.kind == "monitor.revert"]
    assert events and events[-1].details["alert_id"] == alert.id
    print(f"real {kind} deployment: first 500 -> first answer of version 1: {back - first_error:.2f} s")
    assert back - first_error <= 60


@pytest.fixture
def pushed_metrics_images(docker_engine, metrics_images):
    """The two images in the test registry, where the Kubernetes node pulls from (with the namespace's secret)."""
    client = docker_engine.client(timeout=600)
    out = {}
    for key, ref in metrics_images.items():
        repo = f"{docker_engine.registry}/{ref.split(':')[0]}"
        client.images.get(ref).tag(repo, tag=key)
        for line in client.api.push(repo, tag=key, auth_config=docker_engine.auth_config, stream=True, decode=True):
            if "error" in line or "errorDetail" in line:
                raise RuntimeError(f"push of {repo}:{key} failed: {line}")
        out[key] = f"{repo}:{key}"
    client.close()
    return out


def test_a_failing_revision_on_kubernetes_is_reverted_automatically(ws, tmp_path, docker_engine, kube_cluster,
                                                                     kube_namespace, pushed_metrics_images):
    from mlops_desktop.deploy import DeploymentService
    from mlops_desktop.deploy.images import GivenImages

    register_versions(ws, tmp_path, count=2)
    svc = DeploymentService(ws, images=GivenImages({("churn", 1): pushed_metrics_images["ok"],
                                                    ("churn", 2): pushed_metrics_images["fail"]}))
    secret = kube_namespace.add_pull_secret(docker_engine.registry, docker_engine.registry_user,
                                            docker_engine.registry_password)
    svc.add_target("k", "kubernetes", namespace=kube_namespace.name,
                   options={"kubeconfig": str(kube_cluster.kubeconfig), "pull_secret": secret,
                            "node_address": kube_cluster.node_ip})
    name = "churn-revert"
    assert svc.create(name, "k", "churn/1", reason="first", deadline_s=120).outcome == "healthy"
    assert svc.update(name, "churn/2", reason="new model", deadline_s=120).outcome == "healthy"  # ready, but 500s
    AlertStore(ws).add_rule(Rule("errors", "error_rate > 0.05", action="revert", severity="critical"))
    urls = [e.url for e in svc.endpoints(name) if e.role in ("router", "replica")]
    first_error, back = revert_under_load(ws, name, lambda: urls, 150)
    history = svc.history(name)
    assert history[-1].action == "revert" and history[-1].version == 1 and history[-1].outcome == "healthy"
    [alert] = AlertStore(ws).alerts(deployment=name)
    assert alert.action == "reverted to 1"
    print(f"real kubernetes deployment: first 500 -> first answer of version 1: {back - first_error:.2f} s")
    assert back - first_error <= 90
    svc.delete(name)
