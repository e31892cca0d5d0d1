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
    labels = [k for k in compare._row_keys if k]   # rows under the Parameters and Metrics group rows
    shown = [compare.table.verticalHeaderItem(i).text() for i in range(compare.table.rowCount())]
    assert "lr" in shown and "params.lr" in labels and set(labels) <= set(compare.differing_labels())
    assert len(compare.parallel.lines) == len(compare.runs)
    compare.only_diff.setChecked(False)
    assert compare.table.rowCount() >= len(labels)


def compare_runs_with_gaps(store):
    """Three runs; the third has no val_loss; loss-like and accuracy-like metrics."""
    import numpy as np

    exp = store.get_or_create_experiment("cmp")
    uuids = []
    for i, (lr, acc, loss) in enumerate(((0.1, 0.91, 0.30), (0.01, 0.95, 0.20), (0.001, 0.89, None))):
        run = store.create_run(exp.id, name=f"lr={lr}", params={"lr": lr, "opt": "adam" if i else "sgd"})
        store.log_metric_arrays(run.uuid, "val_acc", np.array([1]), np.array([1]), np.array([acc]))
        store.log_metric_arrays(run.uuid, "mystery", np.array([1]), np.array([1]), np.array([float(i)]))
        if loss is not None:
            store.log_metric_arrays(run.uuid, "val_loss", np.array([1]), np.array([1]), np.array([loss]))
        uuids.append(run.uuid)
    return store.get_runs(uuids)


def test_best_and_worst_marked_per_row_with_overridable_direction(ctx, qtbot):
    from mlops_desktop.gui.compare import guess_direction

    assert guess_direction("val_loss") == "min" and guess_direction("train_rmse") == "min"
    assert guess_direction("val_acc") == "max" and guess_direction("f1_macro") == "max"
    assert guess_direction("mystery") is None
    runs = compare_runs_with_gaps(ctx.workspace.tracking)
    view = CompareView(ctx.settings)
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.set_runs(runs)
    assert view.row_texts("metrics.val_acc") == ["0.91", "▲ 0.95", "▼ 0.89"]
    assert view.row_texts("metrics.val_loss") == ["▼ 0.3", "▲ 0.2", "—"], "a run without the value shows a dash"
    assert view.row_texts("metrics.mystery") == ["0", "1", "2"], "unknown direction: nothing ranked"
    view.set_direction("mystery", "max")
    assert view.row_texts("metrics.mystery") == ["▼ 0", "1", "▲ 2"]
    again = CompareView(ctx.settings)   # the choice is kept
    qtbot.addWidget(again)
    again.set_runs(runs)
    assert again.row_texts("metrics.mystery") == ["▼ 0", "1", "▲ 2"]


def test_colour_chips_missing_values_scatter_and_four_runs_fit(ctx, qtbot):
    from mlops_desktop.gui.parallel import MISSING_Y
    from mlops_desktop.gui.theme import run_color

    runs = compare_runs_with_gaps(ctx.workspace.tracking)
    view = CompareView(ctx.settings)
    qtbot.addWidget(view)
    view.resize(930, 520)   # the Compare tab in a 1280 px window
    view.show()
    view.set_runs(runs)
    for j in range(3):
        chip = view.table.horizontalHeaderItem(j).icon().pixmap(8, 8).toImage().pixelColor(4, 4).name()
        assert chip == run_color(j)
        assert view.parallel.lines[j].opts["pen"].color().name() == run_color(j)
    # the run without val_loss is still drawn, at the n/a mark of that axis
    axis = view.parallel.axes.index("metrics.val_loss")
    _x, y = view.parallel.lines[2].getData()
    assert y[axis] == MISSING_Y and view.parallel.missing["metrics.val_loss"] == ["lr=0.001"]
    assert np_all_finite(y)
    # scatter: a param across, a metric up, a point per run in its colour
    view.scatter.x_choice.setCurrentIndex(view.scatter.x_choice.findData("params.lr"))
    view.scatter.y_choice.setCurrentIndex(view.scatter.y_choice.findData("metrics.val_acc"))
    points = view.scatter.points.points()
    assert sorted((p.pos().x(), p.pos().y()) for p in points) == [(0.001, 0.89), (0.01, 0.95), (0.1, 0.91)]
    assert {p.brush().color().name() for p in points} == {run_color(0), run_color(1), run_color(2)}
    assert view.scatter.plot_item.getAxis("left").labelText == "val_acc"
    # four runs fit beside the labels without a horizontal scroll bar
    more = runs + [runs[0]]
    view.set_runs(more)
    qtbot.wait(50)
    assert sum(view.table.columnWidth(j) for j in range(4)) <= view.table.viewport().width()
    assert view.table.horizontalScrollBar().maximum() == 0


def np_all_finite(values) -> bool:
    import numpy as np

    return bool(np.isfinite(values).all())
