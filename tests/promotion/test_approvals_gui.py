"""The Approvals area with real widgets offscreen: the queue, the evidence panels, labelling from the keyboard
(saved to the review and the lake), approve and reject with a comment, self-approval refused in words."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from mlops_desktop import audit, registry  # noqa: E402
from mlops_desktop.promotion import pipeline, requests, samples  # noqa: E402
from mlops_desktop.promotion.policy import find_policy  # noqa: E402
from tests.promotion.promo_helpers import champion_and_candidate, holdout_policy  # noqa: E402

pytestmark = pytest.mark.gui


def fake_samples(n: int = 6) -> list[samples.Sample]:
    """Stand-in rows for what a shadow check keeps (the real path is tested in test_shadow_labels.py)."""
    return [samples.Sample(i + 1, f"req-{i}", 0, 1.7e9 + i, {"tenure": 10.0 + i, "spend": 40.0, "plan": "basic",
                                                             "calls": i}, "yes", "no" if i < 3 else "yes", i >= 3)
            for i in range(n)]


@pytest.fixture
def review(ws, tmp_path):
    _, champ, cand = champion_and_candidate(ws, tmp_path)
    req = pipeline.run(ws, pipeline.start(ws, cand.ref, find_policy(holdout_policy(tmp_path), "churn")).id)
    samples.store(ws, req.id, fake_samples())
    return req


@pytest.fixture
def view(ctx, qtbot):
    from mlops_desktop.gui.views.approvals_view import ApprovalsView

    v = ApprovalsView(ctx)
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    return v


def test_queue_evidence_keyboard_labels_and_approval(review, view, ws, qtbot):
    qtbot.waitUntil(lambda: view.page is not None, timeout=15000)
    assert view.queue.rowCount() == 1 and view.queue.rows[0].id == review.id
    assert view.evidence.checks.rowCount() == 2 and view.evidence.metrics.rowCount() >= 5
    assert view.evidence.summary.text().startswith(f"#{review.id}  churn/2  against  churn/1")
    assert "bob registered it and cannot approve it" in view.decision_note.text()
    view.show_item(tab="labels")
    table = view.labels.table
    assert view.labels.model.rowCount() == 6 and table.currentIndex().row() == 0
    qtbot.keyClick(table, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: view.labels.model.rows[0].label == "yes", timeout=10000)
    assert table.currentIndex().row() == 1
    qtbot.keyClick(table, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: view.labels.model.rows[1].label == "no", timeout=10000)
    qtbot.keyClick(table, Qt.Key.Key_J)
    assert table.currentIndex().row() == 3
    qtbot.keyClick(table, Qt.Key.Key_K)
    qtbot.keyClick(table, Qt.Key.Key_T)
    assert view.labels.typed.hasFocus()
    qtbot.keyClicks(view.labels.typed, "no")
    qtbot.keyClick(view.labels.typed, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.labels.model.rows[2].picked == "typed", timeout=10000)
    assert "3 labelled" in view.labels.counts.text()
    assert [(s.label, s.picked) for s in samples.load(ws, review.id)][:3] == \
        [("yes", "champion"), ("no", "candidate"), ("no", "typed")]
    qtbot.keyClick(table, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    from mlops_desktop.data import catalog

    qtbot.waitUntil(lambda: catalog.latest(ws.db, "labels_churn") is not None, timeout=15000)
    assert catalog.latest(ws.db, "labels_churn").row_count == 3
    # approve: a comment is required, then it moves the alias
    view.approve_button.click()
    assert "write a comment first" in view.decision_note.text()
    view.comment.setText("holdout holds, labelled disagreements favour it")
    view.approve_button.click()
    qtbot.waitUntil(lambda: requests.get(ws, review.id).state == "approved", timeout=20000)
    assert registry.resolve(ws, "churn@champion").version == review.version
    qtbot.waitUntil(lambda: view.page is not None and view.page["request"]["state"] == "approved", timeout=10000)
    assert not view.approve_button.isEnabled()
    assert any(view.history_model.rows[i][2] == "approved" for i in range(view.history_model.rowCount()))
    assert view.queue.rowCount() == 0 or view.show_all.isChecked()


def test_self_approval_is_refused_in_words_and_reject_works(ws, tmp_path, view, qtbot):
    models, _, _ = champion_and_candidate(ws, tmp_path)
    mine = models.good(audit.current_actor(), seed=4)
    req = pipeline.run(ws, pipeline.start(ws, mine.ref, find_policy(holdout_policy(tmp_path), "churn")).id)
    view.refresh()
    qtbot.waitUntil(lambda: view.page is not None and view.page["request"]["id"] == req.id, timeout=15000)
    view.comment.setText("my own is fine")
    view.approve_button.click()
    qtbot.waitUntil(lambda: "cannot approve it" in view.decision_note.text(), timeout=10000)
    assert requests.get(ws, req.id).state == "review" and view.approve_button.isEnabled()
    view.reject_button.click()
    qtbot.waitUntil(lambda: requests.get(ws, req.id).state == "rejected", timeout=10000)
    view.show_all.setChecked(True)
    qtbot.waitUntil(lambda: view.queue.rowCount() == 1 and view.page is not None
                    and view.page["request"]["state"] == "rejected", timeout=10000)
    assert "rejected" in view.decision_note.text()


def test_a_failed_check_is_notified_when_the_area_loads(ws, tmp_path, ctx, qtbot):
    from mlops_desktop.gui.views.approvals_view import ApprovalsView

    models, _, _ = champion_and_candidate(ws, tmp_path)
    bad = models.bad()
    req = pipeline.run(ws, pipeline.start(ws, bad.ref, find_policy(holdout_policy(tmp_path), "churn")).id)
    assert req.state == "failed"
    seen: list[str] = []
    ctx.notifications.posted.connect(lambda note: seen.append(f"{note.title}: {note.message}"))
    v = ApprovalsView(ctx)
    qtbot.addWidget(v)
    qtbot.waitUntil(lambda: any("check holdout failed" in s for s in seen), timeout=15000)
    assert v.queue.rowCount() == 0 and "nothing waits for review" in v.status.text()


def test_a_pending_request_shows_in_the_queue_and_runs_its_checks_from_the_area(ws, tmp_path, view, qtbot):
    _, _, cand = champion_and_candidate(ws, tmp_path)
    req = pipeline.start(ws, cand.ref, find_policy(holdout_policy(tmp_path), "churn"))
    view.refresh()
    qtbot.waitUntil(lambda: view.page is not None and view.page["request"]["id"] == req.id, timeout=15000)
    assert view.queue.rows[0].state == "pending" and "1 running or waiting for checks" in view.status.text()
    assert view.resume_button.isEnabled() and not view.approve_button.isEnabled()
    view.resume_button.click()
    qtbot.waitUntil(lambda: view.page is not None and view.page["request"]["state"] == "review", timeout=60000)
    assert view.approve_button.isEnabled() and not view.resume_button.isEnabled()
    assert [c[2] for c in view.evidence.checks.rows] == ["passed", "passed"]
