"""The Back-tests area (pytest-qt, offscreen): the list and a result's chart and table, the launch form running a
real back-test in a worker with progress, cancel, and the form's errors in words."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402

from mlops_desktop.backtest.api import BacktestSpec, list_backtests, load_backtest, run_backtest  # noqa: E402


@pytest.fixture
def bctx(qapp, bws):
    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context

    theme.apply(qapp, "light")
    context = make_context(bws)
    yield context
    assert context.tasks.shutdown(20000), "background tasks did not stop"


@pytest.fixture
def view(bctx, qtbot):
    from mlops_desktop.gui.views.backtest_view import BacktestView

    v = BacktestView(bctx)
    qtbot.addWidget(v)
    v.resize(1400, 900)
    v.show()
    qtbot.waitUntil(lambda: v.form.dataset.count() == 1 and v.form.versions.count() == 2, timeout=15000)
    return v


def test_shows_a_stored_backtest_chart_and_table(bws, bctx, qtbot):
    from mlops_desktop.gui.views.backtest_view import BacktestView

    result = run_backtest(bws, BacktestSpec("customers", "ts", ["churn/1", "churn/2"], "7d", "7d"))
    v = BacktestView(bctx)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitUntil(lambda: v.result is not None and v.result.id == result.id, timeout=15000)
    assert v.list_model.rowCount() == 1 and v.metric_box.currentText() == "accuracy"
    assert [v.metric_box.itemText(i) for i in range(v.metric_box.count())] == ["accuracy", "f1", "roc_auc"]
    assert set(v.chart.curves) == {"churn/1", "churn/2"}
    xs, ys = v.chart.curves["churn/2"].getData()
    assert list(xs) == [w.index for w in result.windows]
    assert list(ys) == pytest.approx([w.metrics["churn/2"]["accuracy"] for w in result.windows])
    model = v.windows_model
    assert model.rowCount() == len(result.windows) and model.columnCount() == 6
    first = result.windows[0]
    assert model.data(model.index(0, 3)) == f"{first.rows:,}"
    assert model.data(model.index(0, 4)) == f"{first.metrics['churn/1']['accuracy']:.4f}"
    best = max(("churn/1", "churn/2"), key=lambda lab: first.metrics[lab]["accuracy"])
    col = 4 if best == "churn/1" else 5
    assert model.data(model.index(0, col), Qt.ItemDataRole.FontRole).bold()
    v.metric_box.setCurrentText("roc_auc")
    _, ys = v.chart.curves["churn/1"].getData()
    assert list(ys) == pytest.approx([w.metrics["churn/1"]["roc_auc"] for w in result.windows])
    assert "roc_auc over all windows: churn/1" in v.header.text()


def test_launch_form_runs_in_a_worker_with_progress(view, bws, qtbot):
    seen: list[float] = []
    view.form.check_versions(["churn/1", "churn/2"])
    view.form.test_window.setText("7d")
    view.form.gap.setText("1d")
    view.form.recipe.setText("sklearn.linear_model.LogisticRegression:max_iter=300")
    view.form.refit_every.setValue(2)
    qtbot.mouseClick(view.form.run_button, Qt.MouseButton.LeftButton)
    assert view.task is not None and not view.form.run_button.isEnabled()
    view.task.progressed.connect(lambda f, m: seen.append(f))
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    assert view.form.run_button.isEnabled() and "back-test 1:" in view.form.message.text()
    assert view.result is not None and view.result.labels == ["churn/1", "churn/2", "refit"]
    assert view.result.spec["refit_every"] == 2 and view.result.spec["gap"] == "1d"
    assert seen and max(seen) == 1.0
    qtbot.waitUntil(lambda: view.list_model.rowCount() == 1, timeout=10000)
    assert set(view.chart.curves) == {"churn/1", "churn/2", "refit"}


def test_cancel_stops_the_worker_and_keeps_what_was_scored(view, bws, qtbot):
    view.form.check_versions(["churn/1"])
    view.form.test_window.setText("10rows")  # 420 windows: long enough to cancel mid-way
    qtbot.mouseClick(view.form.run_button, Qt.MouseButton.LeftButton)
    scored: list[str] = []

    def on_progress(fraction: float, message: str) -> None:
        # Cancel as the first scored window reaches the GUI (a poll of the label could miss a window: CI's
        # label went past "window 3/" between two polls and the run finished before the test clicked Cancel).
        if message.startswith("window ") and not scored:
            scored.append(message)
            view.form.cancel_button.click()

    view.task.progressed.connect(on_progress)
    qtbot.waitUntil(lambda: view.task is None, timeout=60000)
    assert scored, "no window was reported before the back-test ended"
    assert "cancelled" in view.form.message.text(), view.form.message.text()
    [bt] = list_backtests(bws)
    assert bt.status == "killed"
    kept = load_backtest(bws, bt.id)
    assert 1 <= len(kept.windows) < 420, len(kept.windows)


@pytest.mark.parametrize("setup,needle", [
    (lambda f: (f.check_versions(["churn/1"]), f.test_window.setText("soon")), "test window: 'soon' is not a length"),
    (lambda f: None, "tick the versions"),
    (lambda f: (f.check_versions(["churn/1"]), f.recipe.setText("os.system")), "not a scikit-learn estimator"),
])
def test_form_errors_in_words(view, setup, needle):
    setup(view.form)
    view.form.request_run()
    assert needle in view.form.message.text() and view.task is None
