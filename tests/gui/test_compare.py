"""Compare view: differing params highlighted, parallel coordinates drawn, selection drives it."""

from __future__ import annotations

from gui_helpers import make_runs, wait_idle

from mlops_desktop.gui.compare import CompareView, axis_values, diff_rows


def test_diff_rows_mark_only_differences(ws):
    store = ws.tracking
    exp = store.get_or_create_experiment("c")
    a = store.create_run(exp.id, name="a", params={"lr": 0.1, "opt": "adam", "seed": 1})
    b = store.create_run(exp.id, name="b", params={"lr": 0.2, "opt": "adam", "seed": 1})
    rows = {label: differs for label, _v, differs in diff_rows(store.get_runs([a.uuid, b.uuid]))}
    assert rows == {"params.lr": True, "params.opt": False, "params.seed": False}


def test_categorical_axis(ws):
    store = ws.tracking
    exp = store.get_or_create_experiment("c")
    runs = [store.create_run(exp.id, params={"opt": o}) for o in ("sgd", "adam", "sgd")]
    values, cats = axis_values(store.get_runs([r.uuid for r in runs]), "params.opt")
    assert cats == ["adam", "sgd"] and values.tolist() == [1.0, 0.0, 1.0]


def test_compare_view_from_selection(window, ctx, qtbot):
    make_runs(ctx.workspace.tracking, 6)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    view.show_item(tab="compare")
    qtbot.waitUntil(lambda: len(view.compare.runs) >= 2, timeout=5000)
    compare: CompareView = view.compare
    assert view.tabs.currentWidget() is compare
    assert compare.table.columnCount() == len(compare.runs)
    labels = [compare.table.verticalHeaderItem(i).text() for i in range(compare.table.rowCount())]
    assert "params.lr" in labels and set(labels) <= set(compare.differing_labels())
    assert len(compare.parallel.lines) == len(compare.runs)
    compare.only_diff.setChecked(False)
    assert compare.table.rowCount() >= len(labels)
