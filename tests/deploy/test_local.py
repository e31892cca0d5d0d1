"""The local target on the real Docker engine: deploy, update, scale, logs, rollback to an older revision; a
crashing image and a never-ready one rolled back by themselves while the old replicas keep answering; an engine
that cannot be reached leaves `unknown`, and re-running resumes the same revision once it answers."""

from __future__ import annotations

import os
import time

import pytest
import requests

from mlops_desktop.deploy import DeploymentService
from mlops_desktop.deploy.images import GivenImages
from tests.deploy.conftest import deployment_name, tiny_source


def _answer(svc, name):
    urls = [e.url for e in svc.endpoints(name) if e.role in ("router", "replica")]
    assert urls, svc.status(name)
    return requests.post(urls[0] + "/invocations", json={"inputs": [[1]]}, timeout=5).json()["version"]


@pytest.fixture
def local(ws, docker_scope, churn_versions, tiny_images):
    svc = DeploymentService(ws, images=tiny_source(churn_versions, tiny_images))
    svc.add_target("here", "local", address=docker_scope.engine.host, options={"labels": docker_scope.labels})
    return svc


def test_deploy_update_scale_logs_and_roll_back_to_any_revision(local, docker_scope):
    name = deployment_name(docker_scope)
    t0 = time.monotonic()
    rev = local.create(name, "here", "churn/1", reason="first", deadline_s=60)
    first = time.monotonic() - t0
    assert rev.outcome == "healthy", rev.detail
    assert rev.number == 1 and rev.image.endswith(":v1") and rev.finished_at
    assert _answer(local, name) == "1"
    st = local.status(name)
    assert (st.state, st.desired, st.ready) == ("healthy", 1, 1)
    assert st.replicas[0].health == "ready" and st.replicas[0].version == "1"

    assert local.update(name, "churn/2", reason="better").outcome == "healthy"
    assert _answer(local, name) == "2"
    assert local.status(name).ready == 1  # the old container is gone

    st = local.scale(name, 3)
    assert st.desired == 3
    deadline = time.monotonic() + 30
    while local.status(name).ready < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert local.status(name).ready == 3
    assert local.update(name, "churn/3").outcome == "healthy"
    st = local.status(name)
    assert (st.desired, st.ready) == (3, 3) and {r.version for r in st.replicas} == {"3"}

    lines = list(local.logs(name))
    assert any("tiny server version 3" in line for line in lines), lines[:5]
    assert all(line.startswith("[") for line in lines)

    back = local.rollback(name, to=1, reason="v1 was better")
    assert back.outcome == "healthy" and back.action == "rollback" and back.version == 1
    assert _answer(local, name) == "1"
    assert local.status(name).desired == 3  # the replica count is kept, as kubectl rollout undo does
    history = local.history(name)
    assert [(r.number, r.version, r.action) for r in history] == [
        (1, 1, "create"), (2, 2, "update"), (3, 3, "update"), (4, 1, "rollback")]
    assert history[2].outcome == "reverted" and history[2].rolled_back_to == 4
    dep = local.get(name)
    assert dep.current_revision == 4 and dep.version == 1 and dep.state == "healthy"
    print(f"local: create -> healthy {first:.1f} s")

    local.delete(name, reason="done")
    assert docker_scope.client.containers.list(all=True, filters={"label": f"mlops.deployment={name}"}) == []
    assert [r.number for r in local.store.revisions(name)] == []  # the deployment is gone ...
    assert ws_revisions(local, name) == 4                            # ... its history is not


def ws_revisions(svc, name):
    return svc.ws.db.query("SELECT count(*) FROM deploy_revisions WHERE deployment_name = ?", (name,))[0][0]


def test_a_crashing_and_a_never_ready_image_roll_back_by_themselves(local, docker_scope, tiny_images):
    name = deployment_name(docker_scope)
    assert local.create(name, "here", "churn/1", replicas=2).outcome == "healthy"
    local.images = GivenImages({("churn", 2): tiny_images["crash"], ("churn", 3): tiny_images["unready"],
                                ("churn", 1): tiny_images["v1"]})
    t0 = time.monotonic()
    bad = local.update(name, "churn/2", reason="crashes", deadline_s=60)
    crash_s = time.monotonic() - t0
    assert bad.outcome == "rolled_back", bad.detail
    assert "exit" in bad.detail and "crashing on purpose" in bad.detail
    assert bad.rolled_back_to == 1 and crash_s < 30
    assert _answer(local, name) == "1"
    t0 = time.monotonic()
    bad = local.update(name, "churn/3", reason="never ready", deadline_s=6)
    unready_s = time.monotonic() - t0
    assert bad.outcome == "rolled_back" and "not ready within 6 s" in bad.detail and "503" in bad.detail
    assert 6 <= unready_s < 30
    dep = local.get(name)
    assert dep.current_revision == 1 and dep.state == "healthy" and "rolled back" in dep.reason
    st = local.status(name)
    assert (st.state, st.ready, st.desired) == ("healthy", 2, 2) and {r.version for r in st.replicas} == {"1"}
    assert [r.outcome for r in local.history(name)] == ["healthy", "rolled_back", "rolled_back"]
    print(f"local: crash -> rolled back {crash_s:.1f} s, unready (6 s deadline) -> rolled back {unready_s:.1f} s")


def test_first_rollout_that_fails_is_failed_and_leaves_nothing(local, docker_scope, tiny_images):
    name = deployment_name(docker_scope)
    local.images = GivenImages({("churn", 1): tiny_images["crash"]})
    rev = local.create(name, "here", "churn/1")
    assert rev.outcome == "failed" and "exit" in rev.detail
    assert local.get(name).state == "failed"
    assert docker_scope.client.containers.list(all=True, filters={"label": f"mlops.deployment={name}"}) == []


def test_an_unreachable_engine_is_unknown_and_rerunning_resumes(ws, tmp_path, docker_scope, churn_versions,
                                                              tiny_images):
    """The target's socket is a path that does not exist yet: the rollout records `unknown` with the reason;
    once the path leads to the engine, running the same action again continues the same revision."""
    sock = tmp_path / "engine.sock"
    svc = DeploymentService(ws, images=tiny_source(churn_versions, tiny_images))
    svc.add_target("later", "local", address=f"unix://{sock}", options={"labels": docker_scope.labels})
    name = deployment_name(docker_scope)
    rev = svc.create(name, "later", "churn/1")
    assert rev.outcome == "unknown" and "cannot be reached" in rev.detail or "stopped answering" in rev.detail
    dep = svc.get(name)
    assert dep.state == "unknown" and dep.current_revision == 0
    st = svc.status(name)
    assert st.state == "unknown" and st.reason
    check = svc.check_target("later")
    assert not check.reachable and check.detail
    os.symlink(docker_scope.engine.host.removeprefix("unix://"), sock)
    svc._backends.clear()
    again = svc.create(name, "later", "churn/1")
    assert again.number == 1 and again.outcome == "healthy"
    assert [r.outcome for r in svc.history(name)] == ["healthy"]
    assert svc.check_target("later").reachable


def test_revert_goes_to_the_last_stable_revision_and_skips_alerting_ones(local, docker_scope, ws):
    from mlops_desktop.audit import log as audit

    name = deployment_name(docker_scope)
    assert local.create(name, "here", "churn/1").outcome == "healthy"
    assert local.update(name, "churn/2").outcome == "healthy"
    local.flag_alerting(name, 2, "alert-err-rate")   # v2 served while an alert fired
    assert local.update(name, "churn/3").outcome == "healthy"
    local.flag_alerting(name, 3, "alert-p99")
    assert local.last_stable(name).number == 1
    rev = local.revert(name, "p99 above 0.5 s", cause="alert-p99")
    assert rev.outcome == "healthy" and rev.action == "revert" and rev.version == 1
    assert _answer(local, name) == "1"
    hist = local.history(name)
    assert hist[2].outcome == "reverted" and hist[2].alerting == "alert-p99"
    ev = audit.events(ws.db, kind="deploy.revert")
    assert ev and ev[-1].details["cause"] == "alert-p99" and ev[-1].details["from_revision"] == 3
    # nothing stable left before revision 4 that is not v1 itself
    assert local.last_stable(name) is None


def test_logs_follow_streams_new_lines_and_closing_it_leaves_no_thread(local, docker_scope):
    import threading

    name = deployment_name(docker_scope)
    assert local.create(name, "here", "churn/1", replicas=2).outcome == "healthy"
    url = local.endpoints(name)[0].url
    before = {t.name for t in threading.enumerate()}
    lines = local.logs(name, follow=True, since=time.time() - 1)
    end = time.monotonic() + 20
    seen = False
    poke = threading.Thread(target=lambda: [requests.post(url + "/v2/marker-request", timeout=5) for _ in range(3)])
    poke.start()
    for line in lines:
        if "/v2/marker-request" in line:
            seen = True
            break
        if time.monotonic() > end:
            break
    lines.close()
    poke.join()
    assert seen
    deadline = time.monotonic() + 5
    while any(t.name.startswith("deploy-logs-") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("deploy-logs-")
                and t.name not in before]
