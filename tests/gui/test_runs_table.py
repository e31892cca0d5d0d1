"""Issue 14: the runs table's columns (Parameters | Metrics, defaults that fit), opening runs, Tab, empty states."""

from __future__ import annotations

import numpy as np
from gui_helpers import make_runs, wait_idle
from PySide6.QtCore import Qt

from mlops_desktop.gui.runs_table import default_columns, unknown_key_message


def sklearn_like(store, experiment="iris"):
    """Runs as a scikit-learn comparison logs them: model-specific params, one value per metric."""
    exp = store.get_or_create_experiment(experiment)
    specs = [("logreg", {"model": "LogisticRegression", "C": 1.0, "test_size": 0.25}),
             ("forest", {"model": "RandomForest", "n_estimators": 60, "max_depth": 4, "test_size": 0.25}),
             ("svm", {"model": "SVC", "C": 2.0, "kernel": "rbf", "test_size": 0.25})]
    uuids = []
    for i, (name, params) in enumerate(specs):
        run = store.create_run(exp.id, name=name, params=params)
        for key, value in (("val_acc", 0.9 + i / 100), ("val_f1", 0.88 + i / 100), ("train_acc", 0.99)):
            store.log_metric_arrays(run.uuid, key, np.array([5]), np.array([1]), np.array([value]))
        store.set_terminated(run.uuid, "finished")
        uuids.append(run.uuid)
    return exp, uuids


def test_default_columns_are_the_params_that_vary_and_the_metrics_that_exist(ws):
    _exp, uuids = sklearn_like(ws.tracking)
    runs = ws.tracking.get_runs(uuids)
    params, metrics = default_columns(runs, room=20)
    assert "test_size" not in params, "a param with one value in every run says nothing"
    assert set(params) == {"model", "C", "n_estimators", "max_depth", "kernel"}
    assert params[:2] == ["C", "model"] or params[0] == "model"
    assert metrics == ["train_acc", "val_acc", "val_f1"]
    few_params, few_metrics = default_columns(runs, room=4)
    assert len(few_params) + len(few_metrics) == 4 and few_metrics == ["train_acc", "val_acc"]
    lone_params, _ = default_columns(runs[:1], room=20)
    assert set(lone_params) == set(runs[0].params), "a lone run shows what it was run with"


def test_columns_are_grouped_per_experiment_and_fit_1280x800(window, ctx, qtbot):
    store = ctx.workspace.tracking
    exp, uuids = sklearn_like(store)
    make_runs(store, 5, experiment="other")
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    view.select_experiment(exp.id)
    wait_idle(qtbot, ctx)
    qtbot.wait(50)
    kinds = [c.kind for c in view.model.columns]
    assert "param" in kinds and "metric" in kinds and kinds.index("param") < kinds.index("metric")
    assert view.table.grouped_header.group_titles() == ["Parameters", "Metrics"]
    assert "experiment" not in [c.key for c in view.model.columns], "one experiment: no Experiment column"
    assert not view.table.horizontalScrollBar().isVisible() or view.table.horizontalScrollBar().maximum() == 0
    # numbers right-aligned, text left
    c_col = next(i for i, c in enumerate(view.model.columns) if c.kind == "param" and c.key == "C") \
        if "C" in view.model.chosen("param") else None
    row = view.model.row_of(uuids[0])
    if c_col is not None:
        assert view.model.data(view.model.index(row, c_col), Qt.ItemDataRole.TextAlignmentRole) \
            & Qt.AlignmentFlag.AlignRight
    metric_col = next(i for i, c in enumerate(view.model.columns) if c.kind == "metric")
    assert view.model.data(view.model.index(row, metric_col), Qt.ItemDataRole.TextAlignmentRole) \
        & Qt.AlignmentFlag.AlignRight
    # a pick is kept for this experiment only
    view.toggle_column("metric", "val_f1", False)
    assert "val_f1" not in view.model.chosen("metric")
    other = store.get_experiment_by_name("other").id
    view.select_experiment(other)
    wait_idle(qtbot, ctx)
    assert view.model.chosen("metric") == ["acc"] and view.model.chosen("param") == ["batch", "lr"]
    view.select_experiment(exp.id)
    wait_idle(qtbot, ctx)
    assert "val_f1" not in view.model.chosen("metric") and "val_acc" in view.model.chosen("metric")


def test_enter_and_double_click_open_a_run_and_tab_leaves_the_table(window, ctx, qtbot):
    uuids = make_runs(ctx.workspace.tracking, 5)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    view.tabs.setCurrentIndex(0)
    row = view.model.row_of(uuids[2])
    view.table.setFocus()
    view.table.setCurrentIndex(view.model.index(row, 1))
    qtbot.keyClick(view.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: view.tabs.currentWidget() is view.detail, timeout=3000)
    qtbot.waitUntil(lambda: view.detail.run is not None and view.detail.run.uuid == uuids[2], timeout=5000)
    view.tabs.setCurrentIndex(0)
    other = view.model.row_of(uuids[4])
    rect = view.table.visualRect(view.model.index(other, 1))
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())   # press, then double
    qtbot.waitUntil(lambda: view.tabs.currentWidget() is view.detail, timeout=3000)
    qtbot.waitUntil(lambda: view.detail.run is not None and view.detail.run.uuid == uuids[4], timeout=5000)
    assert not view.table.tabKeyNavigation(), "Tab moves on to the next widget, not from cell to cell"
    window.activateWindow()
    view.table.setFocus()
    qtbot.keyClick(view.table, Qt.Key.Key_Tab)
    qtbot.waitUntil(lambda: not view.table.hasFocus(), timeout=2000)


def test_palette_jump_lands_on_the_runs_details(window, ctx, qtbot):
    uuids = make_runs(ctx.workspace.tracking, 12)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    view.tabs.setCurrentIndex(0)
    palette = window.open_palette()
    palette.edit.setText("run-0009")
    labels = [e.label for e in palette.entries]
    palette.list.setCurrentRow(labels.index("Run: run-0009"))
    palette.activate_current()
    qtbot.waitUntil(lambda: view.detail.run is not None and view.detail.run.uuid == uuids[9], timeout=15_000)
    assert view.tabs.currentWidget() is view.detail


def test_unknown_filter_keys_say_so_with_the_closest_name(window, ctx, qtbot):
    assert unknown_key_message("metrics.val_accc > 0.9 and params.lr < 1", ["lr"], ["val_acc"], []) == \
        'No run has a metric named "val_accc" (did you mean "val_acc"?).'
    assert unknown_key_message("metrics.val_acc.max > 0.9 and tags.`my tag` = 'x'", [], ["val_acc"], ["my tag"]) == ""
    assert unknown_key_message("params.LR < 1", ["lr"], [], []).endswith('(did you mean "lr"?).')
    make_runs(ctx.workspace.tracking, 4)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    view.query.setText("metrics.accc > 0.1")
    assert view.apply_query()
    wait_idle(qtbot, ctx)
    assert view.query_error.isVisible()
    assert view.query_error.text() == 'No run has a metric named "accc" (did you mean "acc"?).'
    assert view.table.empty.isVisible() and "matches the filter" in view.table.empty.text()


def test_an_empty_table_says_why(window, ctx, qtbot):
    view = window.area("experiments")
    wait_idle(qtbot, ctx)
    assert view.table.empty.isVisible() and "No runs in this workspace yet" in view.table.empty.text()
    store = ctx.workspace.tracking
    store.get_or_create_experiment("empty-one")
    make_runs(store, 2, experiment="full")
    view.refresh()
    wait_idle(qtbot, ctx)
    assert not view.table.empty.isVisible()
    view.select_experiment(store.get_experiment_by_name("empty-one").id)
    wait_idle(qtbot, ctx)
    assert view.table.empty.isVisible() and view.table.empty.text() == 'No runs in "empty-one" yet.'


def test_a_lone_run_keeps_most_of_a_narrow_table_for_its_metrics():
    """At 1280 px the table holds ~4 columns: a lone autologged run with 5 params and 5 metrics shows 1 param and
    3 metrics (params up to a third of the room), several runs' varying params up to half."""
    from types import SimpleNamespace

    run = SimpleNamespace(params={f"p{i}": str(i) for i in range(5)}, metrics={f"m{i}": None for i in range(5)})
    params, metrics = default_columns([run], room=4)
    assert (len(params), len(metrics)) == (1, 3)
    other = SimpleNamespace(params={f"p{i}": str(i + 1) for i in range(5)}, metrics=run.metrics)
    params, metrics = default_columns([run, other], room=4)
    assert (len(params), len(metrics)) == (2, 2)
