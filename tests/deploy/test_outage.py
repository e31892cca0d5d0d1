"""The engine stopped mid-rollout (dockerd really stopped): the rollout records `unknown` with the reason and never
`healthy`; with the engine back, running the same action again resumes the same revision and sees it healthy.
These stop the engine, so against shared engines they skip (not restartable) and run in CI (docs/TESTING.md)."""

from __future__ import annotations

import threading
import time

import pytest
from engines.common import EngineUnavailable, unavailable

from mlops_desktop.audit import log as audit
from mlops_desktop.deploy import DeploymentService
from mlops_desktop.deploy.images import GivenImages
from tests.deploy.conftest import deployment_name


@pytest.fixture
def restartable_docker(docker_engine):
    try:
        docker_engine.require_restartable()
    except EngineUnavailable as exc:
        unavailable(str(exc))
    return docker_engine


@pytest.mark.parametrize("kind", ["local", "swarm"])
def test_engine_stopped_mid_rollout_is_unknown_and_rerunning_resumes(kind, restartable_docker, ws, docker_scope,
                                                                     churn_versions, tiny_images, request):
    docker_engine = restartable_docker
    if kind == "swarm":
        request.getfixturevalue("swarm")
    svc = DeploymentService(ws, images=GivenImages({("churn", 1): tiny_images["v1"],
                                                    ("churn", 2): tiny_images["slow"]}))
    svc.add_target("t", kind, address=docker_engine.host, options={"labels": docker_scope.labels})
    name = deployment_name(docker_scope)
    assert svc.create(name, "t", "churn/1", deadline_s=90).outcome == "healthy"
    result = {}

    def update():
        result["rev"] = svc.update(name, "churn/2", reason="slow to start", deadline_s=120)

    worker = threading.Thread(target=update)
    worker.start()
    time.sleep(3)  # the new replica runs but is not ready for 10 s
    with docker_engine.stopped():
        worker.join(120)
        rev = result["rev"]
        assert rev.outcome == "unknown" and rev.finished_at is None, rev
        assert "stopped answering" in rev.detail or "cannot be reached" in rev.detail
        dep = svc.get(name)
        assert dep.state == "unknown" and dep.current_revision == 1
        st = svc.status(name)
        assert st.state == "unknown" and st.reason
    again = svc.update(name, "churn/2", reason="slow to start", deadline_s=120)
    assert again.number == rev.number and again.outcome == "healthy", again.detail
    assert [r.outcome for r in svc.history(name)] == ["healthy", "healthy"]
    kinds = [e.kind for e in audit.events(ws.db)]
    assert "deploy.resume" in kinds and "deploy.outcome.unknown" in kinds
