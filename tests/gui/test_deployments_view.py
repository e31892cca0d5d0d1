"""The Deployments area over a real workspace whose targets and deployment rows were written through the deploy
service and its store, with a target whose engine does not exist: it never freezes and never lies (unknown: reason),
a rollback asks for a reason and is recorded as a revision, the create dialog stays open with the core's refusal."""

from __future__ import annotations

import time

import pytest
from deployments_data import STANDARD_REVISIONS, add_unreachable_target, write_deployment
from gui_helpers import wait_idle


@pytest.fixture
def models(ws, tmp_path):
    """Real fitted pipelines registered as churn/1..3 (a rollback resolves its version in the registry)."""
    from tests.deploy.conftest import register_versions

    return register_versions(ws, tmp_path, 3, "churn")


@pytest.fixture
def filled(ws, tmp_path):
    add_unreachable_target(ws, tmp_path, "lab")
    dep, _spec = write_deployment(ws, "churn-api", "lab", revisions=STANDARD_REVISIONS)
    return dep


@pytest.fixture
def view(ctx, qtbot, filled):
    from mlops_desktop.gui.views.deployments_view import DeploymentsView

    v = DeploymentsView(ctx)
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    qtbot.waitUntil(lambda: v.deployments_model.rowCount() == 1, timeout=10_000)
    yield v
    v.logs.stop()
    v.hide()
    wait_idle(qtbot, ctx, 15_000)
    v.close_service()


def _cell(model, row: int, col: int) -> str:
    return model.data(model.index(row, col))


def test_empty_workspace_shows_how_to_start(ctx, qtbot):
    from mlops_desktop.gui.views.deployments_view import DeploymentsView

    v = DeploymentsView(ctx)
    qtbot.addWidget(v)
    v.show()
    wait_idle(qtbot, ctx)
    assert v.pages.currentWidget() is v.empty
    assert not v.new_button.isEnabled() and v.empty_button.isEnabled()
    v.close_service()


def test_unreachable_target_and_deployment_show_unknown_with_the_reason(view, ctx, qtbot):
    from mlops_desktop.gui.views.deploy_tables import D_HEALTH, D_MODEL, D_READY, D_REVISION

    targets = view.targets_model
    qtbot.waitUntil(lambda: "lab" in targets.health, timeout=15_000)
    state, text = targets.state_of("lab")
    assert state in ("unknown", "unreachable") and ": " in text   # never 'reachable', always a reason
    deployments = view.deployments_model
    qtbot.waitUntil(lambda: "churn-api" in deployments.snapshots, timeout=15_000)
    assert _cell(deployments, 0, D_HEALTH).startswith("unknown: ")
    assert _cell(deployments, 0, D_READY) == "?/2"          # not seen: not a made-up 0
    assert _cell(deployments, 0, D_MODEL) == "churn/3" and _cell(deployments, 0, D_REVISION) == "4"
    qtbot.waitUntil(lambda: view.rollout.chip.text() == "unknown", timeout=15_000)
    assert view.rollout.reason.text().startswith("unknown: ")
    assert "revision 4: healthy" in view.rollout.log.text()   # the deployment's own event log


def test_revision_timeline_and_rollback_with_a_reason_becomes_a_revision(models, view, ctx, qtbot):
    view.show_item(tab="revisions")
    qtbot.waitUntil(lambda: len(view.timeline.cards) == 4, timeout=15_000)
    assert view.timeline.current == 4
    card = next(c for c in view.timeline.cards if c.revision.number == 2)
    card.button.click()
    dialog = view.dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.ok_button.text() == "Roll back to 2 (churn/2)" and not dialog.ok_button.isEnabled()
    dialog.reason.setText("latency regression in revision 4")
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: view.action_task is None, timeout=30_000)
    wait_idle(qtbot, ctx, 15_000)
    from mlops_desktop.deploy.service import DeploymentService

    revs = DeploymentService(ctx.workspace).history("churn-api")
    assert len(revs) == 5
    last = revs[-1]
    assert (last.action, last.version, last.reason) == ("rollback", 2, "latency regression in revision 4")
    assert last.outcome != "healthy"          # the engine was never seen: nothing recorded healthy
    qtbot.waitUntil(lambda: len(view.timeline.cards) == 5, timeout=15_000)
    assert view.timeline.cards[0].revision.number == 5


def test_rollback_dialog_cancelled_changes_nothing(view, ctx, qtbot):
    view.show_item(tab="revisions")
    qtbot.waitUntil(lambda: len(view.timeline.cards) == 4, timeout=15_000)
    dialog = view.ask_rollback(1)
    dialog.reject()
    wait_idle(qtbot, ctx)
    from mlops_desktop.deploy.service import DeploymentService

    assert len(DeploymentService(ctx.workspace).history("churn-api")) == 4


def test_create_dialog_stays_open_with_the_core_refusal(view, ctx, qtbot):
    dialog = view.open_create_dialog()
    dialog.name.setText("fraud-api")
    dialog.model.setCurrentText("fraud@production")
    assert dialog.ok_button.isEnabled()
    dialog.ok_button.click()
    qtbot.waitUntil(lambda: bool(dialog.error.text()), timeout=15_000)
    assert "fraud" in dialog.error.text() and dialog.isVisible() and dialog.ok_button.isEnabled()
    assert "Traceback" not in dialog.error.text()
    dialog.reject()


def test_logs_tab_follows_only_while_shown_and_says_why_it_stopped(view, ctx, qtbot):
    assert not view.logs.following   # the Rollout tab shows: no stream is open
    view.show_item(tab="logs")
    qtbot.waitUntil(lambda: view.logs.state.text().startswith("stopped"), timeout=15_000)
    assert view.logs.state.text() != "stopped"   # it names the reason (the engine is not there)
    view.show_item(tab="rollout")
    assert not view.logs.following


def test_polls_run_in_workers_and_stop_when_the_area_is_hidden(view, ctx, qtbot):
    assert view.poll_timer.isActive() and view.list_timer.isActive()
    ticks: list[float] = []
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    view.check_targets()
    view.poll_selected()
    qtbot.waitUntil(lambda: len(ticks) >= 20, timeout=10_000)   # the event loop kept turning meanwhile
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 1.0, f"the GUI thread stalled for {max(gaps):.2f} s"
    view.hide()
    assert not view.poll_timer.isActive() and not view.list_timer.isActive()


def test_show_item_names_the_tabs(view):
    from mlops_desktop.errors import UsageError

    with pytest.raises(UsageError, match="choose from rollout, revisions, logs, traffic, build"):
        view.show_item(tab="nope")


def test_every_button_of_the_area_is_safe(view, ctx, qtbot, monkeypatch):
    """Each visible, enabled button of every tab can be clicked: a dialog it opens is closed, a question answers
    No, and nothing raises in a slot."""
    from PySide6.QtWidgets import QApplication, QCheckBox, QDialog, QMessageBox, QPushButton

    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.No))
    view.ask_int = lambda *a: (0, False)
    view.traffic.confirm = lambda *a: False
    clicked = []
    with qtbot.captureExceptions() as exceptions:
        for tab in ("rollout", "revisions", "logs", "traffic", "build"):
            view.show_item(tab=tab)
            qtbot.wait(50)
            for button in view.findChildren(QPushButton) + view.findChildren(QCheckBox):
                if not (button.isVisible() and button.isEnabled()):
                    continue
                button.click()
                clicked.append(button.text())
                for widget in QApplication.topLevelWidgets():
                    if isinstance(widget, QDialog) and widget.isVisible():
                        widget.reject()
            wait_idle(qtbot, ctx, 15_000)
    assert not exceptions, exceptions
    assert {"New deployment…", "Update…", "Scale…", "Restart", "Delete…", "Add target…", "Check targets",
            "Build image"} <= set(clicked)
    from mlops_desktop.deploy.service import DeploymentService

    assert [d.name for d in DeploymentService(ctx.workspace).deployments()] == ["churn-api"]   # No meant no
