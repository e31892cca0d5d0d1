"""Each panel of the Deployments area on the deploy core's own entities: rollout (per replica, and 'unknown: reason'
that claims nothing), the revision timeline and its rollback dialog, the A/B / shadow panel's confirmation, and the
create / update / add-target dialogs refusing hostile input in the core's words."""

from __future__ import annotations

import time

import pytest
from PySide6.QtWidgets import QLabel

from mlops_desktop.deploy.models import (
    ArmPlan,
    Deployment,
    DeploymentSpec,
    ReplicaStatus,
    Revision,
    RouterPlan,
    Status,
)


def _replicas_text(panel) -> list[list[str]]:
    model = panel.model
    return [[model.data(model.index(r, c)) for c in range(model.columnCount())] for r in range(model.rowCount())]


def _status(ready: int = 2) -> Status:
    reps = (ReplicaStatus("churn-api.1.k3x", "ready", "answered /v2/health/ready in 3 ms", version="3",
                          node="node-1", address="127.0.0.1:30001"),
            ReplicaStatus("churn-api.2.p9q", "starting" if ready < 3 else "ready", "container started 2 s ago",
                          version="3", node="node-1", address="127.0.0.1:30002"),
            ReplicaStatus("churn-api.3.zz1", "ready", "", version="3", node="node-1", address="127.0.0.1:30003"))
    return Status(desired=3, ready=ready, replicas=reps, state="progressing" if ready < 3 else "healthy",
                  reason=f"{ready}/3 replicas ready", events=("task churn-api.2 starting",), observed_at=time.time())


def _rev(number: int, version: int, outcome: str, action: str = "update", reason: str = "") -> Revision:
    spec = DeploymentSpec(name="churn-api", target="lab", model_ref=f"churn/{version}", model="churn",
                          version=version, replicas=2)
    return Revision(deployment="churn-api", number=number, model="churn", version=version,
                    image=f"127.0.0.1:5000/mlops/churn:{version}", actor="alice", at=time.time() - 600 + number,
                    reason=reason, outcome=outcome, action=action, spec=spec)


def _deployment(router: RouterPlan | None = None, version: int = 3) -> Deployment:
    spec = DeploymentSpec(name="churn-api", target="lab", model_ref=f"churn/{version}", model="churn",
                          version=version, replicas=2)
    return Deployment(name="churn-api", target="lab", spec=spec, current_revision=4, state="healthy", reason="",
                      router=router, created_at=time.time() - 3600, updated_at=time.time(), model="churn",
                      version=version, image=f"127.0.0.1:5000/mlops/churn:{version}")


# ---------------------------------------------------------------------------------------------------- rollout
def test_rollout_panel_shows_replicas_ready_of_desired_and_each_replica(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_rollout import RolloutPanel

    panel = RolloutPanel()
    qtbot.addWidget(panel)
    panel.show_status(_status(ready=2))
    assert panel.chip.text() == "progressing"
    assert (panel.bar.value(), panel.bar.maximum()) == (2, 3)
    assert panel.counts.text() == "2/3 ready"
    rows = _replicas_text(panel)
    assert [r[0] for r in rows] == ["churn-api.1.k3x", "churn-api.2.p9q", "churn-api.3.zz1"]
    assert [r[2] for r in rows] == ["ready", "starting", "ready"]
    assert rows[0][1] == "v3" and rows[0][3] == "node-1 · 127.0.0.1:30001"
    assert "task churn-api.2 starting" in panel.events.text()
    panel.show_status(_status(ready=3))
    assert panel.chip.text() == "healthy" and panel.bar.value() == 3


def test_rollout_panel_unknown_keeps_last_seen_replicas_but_claims_nothing(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_rollout import RolloutPanel

    panel = RolloutPanel()
    qtbot.addWidget(panel)
    panel.show_status(_status(ready=3))
    panel.show_unknown("the Docker engine of target 'lab' cannot be reached: connection refused")
    assert panel.chip.text() == "unknown"
    assert panel.reason.text().startswith("unknown: the Docker engine of target 'lab' cannot be reached")
    assert "last seen" in panel.reason.text()
    assert panel.counts.text() == "?/3 ready"
    health = [r[2] for r in _replicas_text(panel)]
    assert health == ["unknown (was ready)"] * 3   # nothing reads 'ready' now
    fresh = RolloutPanel()
    qtbot.addWidget(fresh)
    fresh.show_unknown("timed out after 5 s")
    assert fresh.reason.text() == "unknown: timed out after 5 s"
    assert fresh.model.rowCount() == 0 and not fresh.bar.isVisible()


# ---------------------------------------------------------------------------------------------------- revisions
def test_timeline_offers_roll_back_on_each_earlier_revision(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_revisions import RevisionTimeline

    timeline = RevisionTimeline()
    qtbot.addWidget(timeline)
    revs = [_rev(1, 1, "reverted", "create", "first"), _rev(2, 2, "healthy", reason="retrained"),
            _rev(3, 3, "rolled_back", reason="new features"), _rev(4, 3, "healthy", reason="fixed order"),
            _rev(5, 4, "failed", reason="bad image")]
    timeline.show_revisions(revs, current=4)
    numbers = [c.revision.number for c in timeline.cards]
    assert numbers == [5, 4, 3, 2, 1]   # newest on top
    buttons = {c.revision.number: c.button for c in timeline.cards}
    assert buttons[4] is None and buttons[5] is None   # serving now / newer than what serves
    assert {n for n, b in buttons.items() if b is not None} == {1, 2, 3}
    with qtbot.waitSignal(timeline.rollback_requested) as sig:
        buttons[2].click()
    assert sig.args == [2]
    timeline.set_busy(True)
    assert not any(b.isEnabled() for b in buttons.values() if b is not None)


def test_rollback_dialog_names_both_versions_and_needs_a_reason(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_revisions import RollbackDialog

    dialog = RollbackDialog("churn-api", _rev(2, 2, "healthy"), _rev(4, 3, "healthy"))
    qtbot.addWidget(dialog)
    label_text = "\n".join(lbl.text() for lbl in dialog.findChildren(QLabel))
    assert "from revision 4 (churn/3, healthy)" in label_text
    assert "to revision 2: churn/2 (127.0.0.1:5000/mlops/churn:2)" in label_text
    assert dialog.ok_button.text() == "Roll back to 2 (churn/2)"
    assert not dialog.ok_button.isEnabled()
    dialog.reason.setText("   ")
    assert not dialog.ok_button.isEnabled()
    dialog.reason.setText("p99 doubled after revision 4")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(dialog.accepted):
        dialog.ok_button.click()
    assert dialog.reason_text() == "p99 doubled after revision 4" and dialog.target_number == 2


# ---------------------------------------------------------------------------------------------------- traffic
def test_split_asks_for_confirmation_showing_the_change(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_traffic import TrafficPanel

    panel = TrafficPanel()
    qtbot.addWidget(panel)
    asked: list[tuple[str, str]] = []
    answer = [False]
    panel.confirm = lambda title, text: (asked.append((title, text)), answer[0])[1]
    panel.show_deployment(_deployment(), ["churn/3", "churn/2", "churn/1"])
    assert "All traffic goes to churn/3" in panel.summary.text()
    assert [r.value() for r in panel.arm_rows] == [("churn/3", 100), ("churn/2", 0)]
    panel.arm_rows[0].weight.setValue(90)
    assert not panel.apply_split_button.isEnabled()
    assert panel.split_problem.text() == "The weights add up to 90%, not 100%."
    panel.arm_rows[1].weight.setValue(10)
    panel.sticky.setText("x-user-id")
    assert panel.apply_split_button.isEnabled()
    emitted: list = []
    panel.split_requested.connect(lambda w, s: emitted.append((w, s)))
    assert not panel.apply_split()          # the user says no: nothing is sent
    assert emitted == []
    title, text = asked[-1]
    assert title == "Change the split of churn-api"
    assert "churn/3: 100% → 90%" in text and "churn/2: 0% → 10%" in text
    assert "sticky by header: none → x-user-id" in text
    answer[0] = True
    assert panel.apply_split()
    assert emitted == [({"churn/3": 90, "churn/2": 10}, "x-user-id")]
    panel.add_arm("churn/2", 0)
    assert panel.split_problem.text() == "A version appears twice."


def test_traffic_panel_shows_a_running_router_and_confirms_shadow_changes(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_traffic import TrafficPanel, current_shadow, current_weights

    router = RouterPlan(arms=(ArmPlan("v2", "churn", 2, "img:2", 90.0, 2), ArmPlan("v3", "churn", 3, "img:3", 10.0),
                              ArmPlan("v4", "churn", 4, "img:4", 0.0)),
                        stable="v2", sticky_header="x-user-id", shadow_arm="v4", shadow_percent=25.0)
    dep = _deployment(router, version=2)
    assert current_weights(dep) == {"churn/2": 90, "churn/3": 10}
    assert current_shadow(dep) == ("churn/4", 25.0)
    panel = TrafficPanel()
    qtbot.addWidget(panel)
    asked: list[str] = []
    panel.confirm = lambda title, text: (asked.append(text), True)[1]
    panel.show_deployment(dep, ["churn/4", "churn/3", "churn/2", "churn/1"])
    assert "Router in front of 3 version(s); sticky by header x-user-id." == panel.summary.text()
    assert [r.value() for r in panel.arm_rows] == [("churn/2", 90), ("churn/3", 10)]
    assert panel.sticky.text() == "x-user-id" and panel.stop_shadow_button.isEnabled()
    shadows: list = []
    panel.shadow_requested.connect(lambda ref, pct: shadows.append((ref, pct)))
    panel.shadow_percent.setValue(40.0)
    assert panel.apply_shadow()
    assert "Now: churn/4 at 25%\nAfter: churn/4 at 40%" in asked[-1]
    assert "callers never see them" in asked[-1]
    assert panel.stop_shadow()
    assert asked[-1] == "Stop mirroring 25% of the traffic to churn/4?"
    assert shadows == [("churn/4", 40.0), ("churn/4", 0.0)]
    # a poll that brings the same deployment keeps what the user is typing
    panel.arm_rows[0].weight.setValue(50)
    panel.show_deployment(dep, ["churn/4", "churn/3", "churn/2", "churn/1"])
    assert panel.arm_rows[0].weight.value() == 50


# ---------------------------------------------------------------------------------------------------- dialogs
@pytest.mark.parametrize(("name", "words"), [
    ("Churn_API", "invalid deployment name 'Churn_API'"),
    ("api;rm -rf /", "invalid deployment name"),
    ("a" * 41, "invalid deployment name"),
])
def test_create_dialog_refuses_hostile_names_in_the_core_words(qtbot, ctx, name, words):
    from mlops_desktop.gui.views.deploy_dialogs import CreateDeploymentDialog

    dialog = CreateDeploymentDialog(["lab"], ["churn@production", "churn/2"])
    qtbot.addWidget(dialog)
    dialog.name.setText(name)
    assert words in dialog.error.text()
    assert not dialog.ok_button.isEnabled()


def test_create_dialog_checks_resources_and_env_then_submits(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_dialogs import CreateDeploymentDialog

    dialog = CreateDeploymentDialog(["lab", "laptop"], ["churn@production", "churn/2"])
    qtbot.addWidget(dialog)
    assert dialog.error.text() == "Give the deployment a name."
    dialog.name.setText("churn-api")
    assert dialog.ok_button.isEnabled() and dialog.model.currentText() == "churn@production"
    dialog.resources.memory.setText("12 parsecs")
    assert "invalid memory limit '12 parsecs'" in dialog.error.text() and not dialog.ok_button.isEnabled()
    dialog.resources.memory.setText("512Mi")
    dialog.resources.env.setPlainText("MLOPS_TOKEN=x")
    assert "MLOPS_TOKEN is reserved" in dialog.error.text()
    dialog.resources.env.setPlainText("LOG_LEVEL=debug\n# a comment\n")
    dialog.model.setCurrentText("churn/2 ; echo")
    assert "invalid model reference" in dialog.error.text()
    dialog.model.setCurrentText("churn/2")
    dialog.resources.replicas.setValue(3)
    with qtbot.waitSignal(dialog.submitted) as sig:
        dialog.ok_button.click()
    values = sig.args[0]
    assert values["name"] == "churn-api" and values["target"] == "lab" and values["model_ref"] == "churn/2"
    assert values["replicas"] == 3 and values["memory"] == "512Mi" and values["cpu"] is None
    assert not dialog.ok_button.isEnabled()   # until the core answers
    dialog.failed("no registered model named 'churn'")
    assert dialog.error.text() == "no registered model named 'churn'" and dialog.ok_button.isEnabled()


def test_update_dialog_starts_from_the_current_spec(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_dialogs import UpdateDeploymentDialog

    dep = _deployment()
    dep = Deployment(**{**dep.__dict__, "spec": dep.spec.with_(memory=512 * 1024**2, cpu=0.5, env={"A": "1"})})
    dialog = UpdateDeploymentDialog(dep, ["churn@production", "churn/3", "churn/2"])
    qtbot.addWidget(dialog)
    assert dialog.model.currentText() == "churn/3"
    assert dialog.resources.memory.text() == "512Mi" and dialog.resources.cpu.value() == 0.5
    assert dialog.resources.env.toPlainText() == "A=1" and dialog.resources.replicas.value() == 2
    dialog.model.setCurrentText("churn@production")
    dialog.reason.setText("promote the challenger")
    with qtbot.waitSignal(dialog.submitted) as sig:
        dialog.ok_button.click()
    assert sig.args[0]["model_ref"] == "churn@production" and sig.args[0]["reason"] == "promote the challenger"


def test_add_target_dialog_fields_follow_the_kind(qtbot, ctx):
    from mlops_desktop.gui.views.deploy_dialogs import AddTargetDialog

    dialog = AddTargetDialog()
    qtbot.addWidget(dialog)
    dialog.name.setText("Lab Swarm")
    assert "invalid target name 'Lab Swarm'" in dialog.error.text()
    dialog.name.setText("lab")
    dialog.kind.setCurrentIndex(2)   # kubernetes
    assert not dialog.address.isEnabled() and dialog.namespace.isEnabled()
    dialog.namespace.setText("Team_A")
    assert "invalid namespace 'Team_A'" in dialog.error.text()
    dialog.namespace.setText("team-a")
    with qtbot.waitSignal(dialog.submitted) as sig:
        dialog.ok_button.click()
    assert sig.args[0] == {"name": "lab", "kind": "kubernetes", "address": None, "context": None,
                           "namespace": "team-a"}
