"""The runs table model: store-side sorting and filtering, lazy pages, query errors shown in the filter bar."""

from __future__ import annotations

import pytest
from gui_helpers import make_runs, wait_idle
from PySide6.QtCore import Qt

from mlops_desktop.gui.runs_model import PAGE_SIZE, RunsTableModel


@pytest.fixture
def model(ctx, qtbot):
    m = RunsTableModel(ctx)
    m.set_columns(["lr"], ["acc"])
    return m


def test_lazy_loading_pages(ctx, model, qtbot):
    make_runs(ctx.workspace.tracking, PAGE_SIZE * 2 + 50)
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.set_query()
    assert model.rowCount() == PAGE_SIZE
    assert model.total == PAGE_SIZE * 2 + 50
    assert model.canFetchMore()
    model.fetchMore()
    assert not model.canFetchMore(), "one page at a time"
    qtbot.waitUntil(lambda: model.rowCount() == PAGE_SIZE * 2, timeout=10_000)
    model.fetchMore()
    qtbot.waitUntil(lambda: model.rowCount() == PAGE_SIZE * 2 + 50, timeout=10_000)
    assert not model.canFetchMore()
    assert len({r.uuid for r in model.runs}) == model.rowCount()


def test_sorting_is_done_by_the_store(ctx, model, qtbot):
    make_runs(ctx.workspace.tracking, 40)
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.set_query()
    acc_col = next(i for i, c in enumerate(model.columns) if c.kind == "metric" and c.key == "acc")
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.sort(acc_col, Qt.SortOrder.DescendingOrder)
    values = [r.metrics["acc"].last for r in model.runs]
    assert values == sorted(values, reverse=True)
    assert model.data(model.index(0, acc_col)) == "0.975"
    name_col = 1
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        model.sort(name_col, Qt.SortOrder.AscendingOrder)
    assert [r.name for r in model.runs] == sorted(r.name for r in model.runs)


def test_filtering_with_the_query_language(ctx, model, qtbot):
    make_runs(ctx.workspace.tracking, 60)
    with qtbot.waitSignal(model.loaded, timeout=10_000):
        assert model.set_query(filter_string="params.lr < 0.0025 and status = finished and tags.parity = 'even'")
    assert model.total > 0
    for run in model.runs:
        assert float(run.params["lr"]) < 0.0025 and run.status == "finished" and run.tags["parity"] == "even"
    expected = sum(1 for i in range(60) if (0.001 * (i % 10 + 1)) < 0.0025 and i % 7 and i % 2 == 0)
    assert model.total == expected


def test_bad_query_is_reported_not_run(ctx, model, qtbot):
    make_runs(ctx.workspace.tracking, 3)
    messages = []
    model.query_failed.connect(messages.append)
    assert not model.set_query(filter_string="params.lr <<< 3")
    assert not model.set_query(filter_string="metrics.acc > 'high'")
    assert len(messages) == 2
    assert "metrics.acc" in messages[1]
    assert model.rowCount() == 0


def test_query_error_shown_in_the_view(window, ctx, qtbot):
    make_runs(ctx.workspace.tracking, 5)
    view = window.area("experiments")
    wait_idle(qtbot, ctx)
    view.query.setText("status = sleeping")
    view.apply_query()
    assert view.query_error.isVisible()
    assert "status must be one of" in view.query_error.text()
    assert view.query.property("invalid") is True
    view.query.setText("status = finished")
    assert view.apply_query()
    wait_idle(qtbot, ctx)
    assert not view.query_error.isVisible()
    assert all(r.status == "finished" for r in view.model.runs)
