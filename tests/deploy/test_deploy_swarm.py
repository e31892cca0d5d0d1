"""The swarm target on the real single-node Swarm (dnsrr endpoints, host-mode ports: no IPVS here): deploy,
update, scale, logs, rollback to an older revision than Swarm's one previous spec; a crashing image and a
never-ready one rolled back by themselves; status per task; delete removes every service and the network."""

from __future__ import annotations

import time

import pytest
import requests

from mlops_desktop.deploy import DeploymentService
from mlops_desktop.deploy.images import GivenImages
from tests.deploy.conftest import deployment_name, tiny_source


def _versions(svc, name, n=20):
    seen = set()
    for e in svc.endpoints(name):
        if e.role == "replica":
            for _ in range(max(1, n // 10)):
                seen.add(requests.post(e.url + "/invocations", json={"inputs": [[1]]}, timeout=5).json()["version"])
    return seen


@pytest.fixture
def swarm_svc(ws, swarm, docker_scope, churn_versions, tiny_images):
    svc = DeploymentService(ws, images=tiny_source(churn_versions, tiny_images))
    svc.add_target("sw", "swarm", address=swarm.host, options={"labels": docker_scope.labels})
    return svc


def test_swarm_deploy_update_scale_logs_rollback_and_delete(swarm_svc, docker_scope):
    svc, name = swarm_svc, deployment_name(docker_scope)
    check = svc.check_target("sw")
    assert check.reachable and check.nodes and check.nodes[0]["role"] == "manager", check
    t0 = time.monotonic()
    rev = svc.create(name, "sw", "churn/1", replicas=2, deadline_s=90)
    create_s = time.monotonic() - t0
    assert rev.outcome == "healthy", rev.detail
    assert _versions(svc, name) == {"1"}
    st = svc.status(name)
    assert (st.state, st.desired, st.ready) == ("healthy", 2, 2), st
    t0 = time.monotonic()
    assert svc.update(name, "churn/2", deadline_s=90).outcome == "healthy"
    update_s = time.monotonic() - t0
    assert _versions(svc, name) == {"2"}
    assert svc.update(name, "churn/3", deadline_s=90).outcome == "healthy"
    svc.scale(name, 3)
    end = time.monotonic() + 60
    while svc.status(name).ready < 3 and time.monotonic() < end:
        time.sleep(0.5)
    st = svc.status(name)
    assert (st.desired, st.ready) == (3, 3) and {r.version for r in st.replicas} == {"3"}
    lines = list(svc.logs(name))
    assert any("tiny server version 3" in line for line in lines), lines[:5]
    # revision 1 is older than the one previous spec Swarm keeps
    back = svc.rollback(name, to=1, reason="v1", deadline_s=90)
    assert back.outcome == "healthy" and back.version == 1, back.detail
    assert _versions(svc, name) == {"1"} and svc.status(name).desired == 3
    print(f"swarm: create -> healthy {create_s:.1f} s, update -> healthy {update_s:.1f} s")
    svc.delete(name)
    client = docker_scope.client
    assert not [s for s in client.services.list() if s.name.startswith(name)]
    assert not [n for n in client.networks.list() if n.name == name]


def test_swarm_crash_and_never_ready_are_rolled_back(swarm_svc, docker_scope, tiny_images):
    svc, name = swarm_svc, deployment_name(docker_scope)
    assert svc.create(name, "sw", "churn/1", replicas=2, deadline_s=90).outcome == "healthy"
    svc.images = GivenImages({("churn", 1): tiny_images["v1"], ("churn", 2): tiny_images["crash"],
                              ("churn", 3): tiny_images["unready"]})
    t0 = time.monotonic()
    bad = svc.update(name, "churn/2", deadline_s=60)
    crash_s = time.monotonic() - t0
    assert bad.outcome == "rolled_back", bad.detail
    assert _versions(svc, name) == {"1"}
    engine_events = svc.status(name).events
    assert any("failed" in e or "rollback" in e for e in engine_events), engine_events
    t0 = time.monotonic()
    bad = svc.update(name, "churn/3", deadline_s=10)
    unready_s = time.monotonic() - t0
    assert bad.outcome == "rolled_back", bad.detail
    end = time.monotonic() + 30
    while svc.status(name).state != "healthy" and time.monotonic() < end:
        time.sleep(0.5)
    st = svc.status(name)
    assert st.state == "healthy" and {r.version for r in st.replicas if r.health == "ready"} == {"1"}, st
    assert _versions(svc, name) == {"1"}
    assert [r.outcome for r in svc.history(name)] == ["healthy", "rolled_back", "rolled_back"]
    print(f"swarm: crash -> rolled back {crash_s:.1f} s ({bad.detail[:80]}), unready -> rolled back {unready_s:.1f} s")


def test_the_vip_endpoint_mode_reaches_the_engine(swarm_svc, docker_scope, swarm):
    """Real clusters with IPVS use VIPs: the target option goes into the service's EndpointSpec (routing through a
    VIP does not work on this kernel, so readiness is still checked on the tasks' host-mode ports)."""
    svc, name = swarm_svc, deployment_name(docker_scope)
    svc.add_target("vip", "swarm", address=swarm.host,
                   options={"labels": docker_scope.labels, "endpoint_mode": "vip", "publish_mode": "host"})
    assert svc.create(name, "vip", "churn/1", deadline_s=90).outcome == "healthy"
    spec = docker_scope.client.services.get(name).attrs["Spec"]["EndpointSpec"]
    assert spec["Mode"] == "vip" and spec["Ports"][0]["PublishMode"] == "host"
