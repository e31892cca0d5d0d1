"""A/B and shadow through our router on the real engine: weights honoured within a binomial bound over a few
thousand requests, weights changed live without a redeploy, sticky users keep their arm, a shadow's answers are
never returned while it receives its share, and an update ends the split."""

from __future__ import annotations

import math
import time

import pytest
import requests

from mlops_desktop.audit import log as audit
from mlops_desktop.deploy import DeploymentService
from tests.deploy.conftest import ab_source, deployment_name


def _router(svc, name):
    urls = [e.url for e in svc.endpoints(name) if e.role == "router"]
    assert urls, svc.status(name)
    return urls[0]


def _count(url, n, headers=None):
    arms: dict[str, int] = {}
    with requests.Session() as s:
        for i in range(n):
            h = {k: (v(i) if callable(v) else v) for k, v in (headers or {}).items()}
            r = s.post(url + "/invocations", json={"inputs": [[1]]}, headers=h, timeout=5)
            assert r.status_code == 200, r.text
            arm = r.headers.get("x-mlops-arm", "?")
            assert r.json()["version"] == arm.removeprefix("v"), (arm, r.text)
            arms[arm] = arms.get(arm, 0) + 1
    return arms


def _within(count, n, p, sds=4.5):
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= sds * sd


@pytest.fixture(params=["local", "swarm"])
def ab(request, ws, docker_scope, churn_versions, tiny_images, router_image):
    svc = DeploymentService(ws, images=ab_source(churn_versions, tiny_images, router_image))
    if request.param == "local":
        svc.add_target("t", "local", address=docker_scope.engine.host, options={"labels": docker_scope.labels})
    else:
        request.getfixturevalue("swarm")
        svc.add_target("t", "swarm", address=docker_scope.engine.host, options={"labels": docker_scope.labels})
    name = deployment_name(docker_scope)
    assert svc.create(name, "t", "churn/1", deadline_s=90).outcome == "healthy"
    return svc, name


def test_split_weights_live_changes_sticky_and_the_end_of_the_split(ab, ws):
    svc, name = ab
    dep = svc.split(name, {"churn/1": 90, "churn/2": 10}, reason="try v2", deadline_s=90)
    assert dep.router and dep.router.weights == {"v1": 90.0, "v2": 10.0} and dep.state == "healthy"
    assert svc.history(name)[-1].action == "split"
    url = _router(svc, name)
    n = 2000
    arms = _count(url, n)
    assert set(arms) <= {"v1", "v2"} and _within(arms.get("v2", 0), n, 0.10), arms
    revisions = len(svc.history(name))
    # live: no new revision, no new router container/task
    svc.split(name, {"churn/1": 50, "churn/2": 50}, reason="even")
    assert len(svc.history(name)) == revisions and _router(svc, name) == url
    arms = _count(url, n)
    assert _within(arms.get("v2", 0), n, 0.5), arms
    assert audit.events(ws.db, kind="deploy.split")[-1].details["live"] is True
    # sticky: a new router config (a rollout), then each user keeps their arm
    svc.split(name, {"churn/1": 50, "churn/2": 50}, sticky_header="x-user", reason="sticky", deadline_s=90)
    url = _router(svc, name)
    users = {}
    with requests.Session() as s:
        for _round in range(3):
            for u in range(60):
                r = s.post(url + "/invocations", json={"inputs": [[1]]}, headers={"x-user": f"u{u}"}, timeout=5)
                users.setdefault(u, set()).add(r.headers["x-mlops-arm"])
    assert all(len(a) == 1 for a in users.values()), users
    assert {next(iter(a)) for a in users.values()} == {"v1", "v2"}
    # an update puts everything on one version and removes the router
    assert svc.update(name, "churn/3", deadline_s=90).outcome == "healthy"
    assert svc.get(name).router is None and not [e for e in svc.endpoints(name) if e.role == "router"]
    assert {e.version for e in svc.endpoints(name)} == {"3"}


def test_shadow_answers_are_never_returned(ab):
    svc, name = ab
    dep = svc.shadow(name, "churn/2", 50, reason="compare v2", deadline_s=90)
    assert dep.router.shadow_arm == "v2" and dep.router.weights == {"v1": 100.0, "v2": 0.0}
    url = _router(svc, name)
    arms = _count(url, 400)
    assert arms == {"v1": 400}
    from mlops_desktop.serving.router_client import AdminClient

    admin = svc.backend(svc.get(name).target).router_admin(name)
    deadline = time.monotonic() + 10
    while True:
        state = AdminClient(*admin).state()
        shadow = state.get("shadow") or {}
        sent = shadow.get("sent", shadow.get("mirrored", 0))
        if sent >= 100 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert 100 <= sent <= 300, shadow  # about half of 400 mirrored
    svc.shadow(name, "churn/2", 0, reason="enough")
    assert svc.get(name).router.shadow_percent == 0
