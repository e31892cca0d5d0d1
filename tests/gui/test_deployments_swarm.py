"""The Deployments area driving a real single-node Swarm: a deployment created from the dialog goes healthy with its
replicas shown ready one by one, the target reads reachable, the logs tab streams the replicas' real output, an
update and a rollback to the first revision from the timeline become revisions the engine really serves.

The replicas run the deploy tests' tiny server image (tests/deploy/tiny, a stand-in for a built model image that
speaks the model server's probe and invocation routes), so that no model image build is needed here."""

from __future__ import annotations

import pytest
import requests
from gui_helpers import wait_idle

from tests.deploy.conftest import (  # noqa: F401 - fixtures used by name
    churn_versions,
    deployment_name,
    tiny_images,
    tiny_source,
)

pytestmark = pytest.mark.swarm


@pytest.fixture
def swarm_view(ctx, qtbot, swarm, docker_scope, churn_versions, tiny_images):  # noqa: F811
    from mlops_desktop.deploy import DeploymentService
    from mlops_desktop.gui.views.deployments_view import DeploymentsView

    svc = DeploymentService(ctx.workspace, images=tiny_source(churn_versions, tiny_images))
    svc.add_target("sw", "swarm", address=swarm.host, options={"labels": docker_scope.labels})
    view = DeploymentsView(ctx)
    qtbot.addWidget(view)
    view.close_service()
    view._svc_box[0] = svc            # the view's one service, with the tiny images as its image source
    view.confirm = lambda title, text: True
    view.resize(1500, 950)
    view.show()
    view.load()
    yield view, svc, deployment_name(docker_scope)
    view.logs.stop()
    view.hide()
    wait_idle(qtbot, ctx, 30_000)
    view.close_service()


def _served_versions(svc, name: str) -> set[str]:
    return {requests.post(e.url + "/invocations", json={"inputs": [[1]]}, timeout=5).json()["version"]
            for e in svc.endpoints(name) if e.role == "replica"}


def _wait_action(qtbot, view, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: view.action_task is None, timeout=timeout)


def test_create_watch_logs_update_and_roll_back_on_swarm(swarm_view, docker_scope, ctx, qtbot):
    from mlops_desktop.gui.views.deploy_tables import D_HEALTH, D_READY

    view, svc, name = swarm_view
    qtbot.waitUntil(lambda: "sw" in view.targets_model.health, timeout=30_000)
    state, text = view.targets_model.state_of("sw")
    assert state == "reachable" and text.startswith("reachable · Docker ") and "1/1 node(s) ready" in text
    # -- create from the dialog
    dialog = view.open_create_dialog()
    dialog.name.setText(name)
    dialog.target.setCurrentText("sw")
    dialog.model.setCurrentText("churn/1")
    dialog.resources.replicas.setValue(2)
    assert dialog.ok_button.isEnabled(), dialog.error.text()
    closed: list[int] = []
    dialog.finished.connect(lambda r: closed.append(r))
    errors: list[str] = []
    ctx.notifications.posted.connect(lambda n: errors.append(f"{n.title}: {n.message}") if n.level == "error" else None)
    dialog.ok_button.click()
    actions: list[str] = []
    qtbot.waitUntil(lambda: view.action_task is not None, timeout=5000)
    view.action_task.progressed.connect(lambda _f, m: actions.append(m))
    _wait_action(qtbot, view)
    assert closed == [1], errors   # accepted: the rollout went healthy
    assert actions, "the rollout reported no progress"
    assert _served_versions(svc, name) == {"1"}
    qtbot.waitUntil(lambda: view.selected() is not None and view.selected().name == name, timeout=20_000)
    row = [d.name for d in view.deployments_model.rows].index(name)
    qtbot.waitUntil(lambda: view.deployments_model.data(view.deployments_model.index(row, D_READY)) == "2/2",
                    timeout=30_000)
    assert view.deployments_model.data(view.deployments_model.index(row, D_HEALTH)) == "healthy"
    qtbot.waitUntil(lambda: view.rollout.model.rowCount() == 2 and view.rollout.chip.text() == "healthy",
                    timeout=30_000)
    assert [view.rollout.model.data(view.rollout.model.index(r, 2)) for r in range(2)] == ["ready", "ready"]
    assert view.rollout.counts.text() == "2/2 ready"
    # -- live logs from the replicas, only while the tab shows
    view.show_item(tab="logs")
    qtbot.waitUntil(lambda: "tiny server version 1" in view.logs.view.toPlainText()
                    or "request GET /v2/health/ready" in view.logs.view.toPlainText(), timeout=60_000)
    view.show_item(tab="rollout")
    qtbot.waitUntil(lambda: not view.logs.following, timeout=10_000)
    # -- update from the dialog
    update = view.open_update_dialog()
    update.model.setCurrentText("churn/2")
    update.reason.setText("retrained")
    update.finished.connect(lambda r: closed.append(r))
    update.ok_button.click()
    qtbot.waitUntil(lambda: view.action_task is not None, timeout=5000)
    _wait_action(qtbot, view)
    assert closed == [1, 1], errors
    assert _served_versions(svc, name) == {"2"}
    # -- roll back to revision 1 from the timeline, with a reason
    view.show_item(tab="revisions")
    qtbot.waitUntil(lambda: len(view.timeline.cards) == 2 and view.timeline.current == 2, timeout=30_000)
    card = next(c for c in view.timeline.cards if c.revision.number == 1)
    card.button.click()
    view.dialog.reason.setText("v2 answers slower")
    view.dialog.ok_button.click()
    qtbot.waitUntil(lambda: view.action_task is not None, timeout=5000)
    _wait_action(qtbot, view)
    revs = svc.history(name)
    assert [(r.number, r.action, r.version, r.outcome) for r in revs] == [
        (1, "create", 1, "healthy"), (2, "update", 2, "reverted"), (3, "rollback", 1, "healthy")]
    assert revs[-1].reason == "v2 answers slower"
    assert _served_versions(svc, name) == {"1"}
    qtbot.waitUntil(lambda: len(view.timeline.cards) == 3 and view.timeline.current == 3, timeout=30_000)
    # -- delete (the question answered yes)
    view.delete_selected()
    _wait_action(qtbot, view)
    qtbot.waitUntil(lambda: name not in [d.name for d in view.deployments_model.rows], timeout=30_000)
    assert not [s for s in docker_scope.client.services.list() if s.name.startswith(name)]
