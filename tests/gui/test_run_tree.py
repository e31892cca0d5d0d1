"""Issue 14: a sweep's runs collapse under their parent in the runs table (tree rows)."""

from __future__ import annotations

import time

from gui_helpers import wait_idle
from PySide6.QtCore import Qt

from mlops_desktop.gui.runs_model import group_children


def sweep(store):
    exp = store.get_or_create_experiment("sweep")
    base = time.time() - 100
    parent = store.create_run(exp.id, name="sweep lr", start_time=base)
    children = [store.create_run(exp.id, name=f"lr={lr}", parent_uuid=parent.uuid, params={"lr": lr},
                                 start_time=base + 1 + i) for i, lr in enumerate((0.1, 0.01, 0.001))]
    alone = store.create_run(exp.id, name="baseline", start_time=base + 10)
    return parent.uuid, [c.uuid for c in children], alone.uuid


def test_group_children_puts_each_sweep_run_under_its_parent(ws):
    parent, children, alone = sweep(ws.tracking)
    runs = ws.tracking.search_runs(order_by=["start_time DESC"]).runs   # the children come before the parent
    rows, depth, count = group_children(runs)
    order = [r.uuid for r in rows]
    assert order[0] == alone and order[1] == parent and set(order[2:]) == set(children)
    assert depth[parent] == 0 and all(depth[c] == 1 for c in children) and count == {parent: 3}
    orphan_rows, orphan_depth, _ = group_children([r for r in runs if r.uuid != parent])
    assert len(orphan_rows) == 4 and all(orphan_depth[c] == 0 for c in children), "parent not loaded: top level"


def test_sweep_children_collapse_under_the_parent(window, ctx, qtbot):
    parent, children, alone = sweep(ctx.workspace.tracking)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    model, table = view.model, view.table
    prow = model.row_of(parent)
    name_col = next(i for i, c in enumerate(model.columns) if c.key == "name")
    assert model.data(model.index(prow, name_col)) == "▸ sweep lr  (3)"
    assert all(table.isRowHidden(model.row_of(c)) for c in children)
    assert not table.isRowHidden(model.row_of(alone))
    table.setFocus()
    table.setCurrentIndex(model.index(prow, name_col))
    qtbot.keyClick(table, Qt.Key.Key_Right)
    assert not any(table.isRowHidden(model.row_of(c)) for c in children)
    assert model.data(model.index(prow, name_col)) == "▾ sweep lr  (3)"
    assert model.data(model.index(model.row_of(children[0]), name_col)).strip().startswith("↳ lr=")
    qtbot.keyClick(table, Qt.Key.Key_Left)
    assert all(table.isRowHidden(model.row_of(c)) for c in children)
    # a click on the arrow opens it too
    rect = table.visualRect(model.index(prow, name_col))
    from PySide6.QtCore import QPoint

    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(rect.left() + 10, rect.center().y()))
    assert not table.isRowHidden(model.row_of(children[1]))
    qtbot.keyClick(table, Qt.Key.Key_Left)
    # opening a child from elsewhere opens its parent
    window.navigate("experiments", run_uuid=children[2])
    qtbot.waitUntil(lambda: view.current_run() is not None and view.current_run().uuid == children[2], timeout=5000)
    assert not table.isRowHidden(model.row_of(children[2]))
