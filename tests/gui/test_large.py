"""The Experiments area with 100,000 runs: first page fast, pages load in workers, the store sorts and filters."""

from __future__ import annotations

import time

from gui_helpers import bulk_runs, wait_idle
from PySide6.QtCore import Qt

from mlops_desktop.gui.runs_model import PAGE_SIZE

N = 100_000


def test_hundred_thousand_runs(ws, ctx, qtbot):
    from mlops_desktop.gui.app import make_window

    bulk_runs(ws, N)
    started = time.perf_counter()
    win = make_window(ctx)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    view = win.area("experiments")
    qtbot.waitUntil(lambda: view.model.rowCount() > 0, timeout=10_000)
    first_page_s = time.perf_counter() - started
    assert view.model.total == N and view.model.rowCount() == PAGE_SIZE
    assert first_page_s < 3.0, f"first page took {first_page_s:.2f}s"
    # scrolling to the end asks for the next page; it arrives from a worker
    view.table.scrollToBottom()
    qtbot.waitUntil(lambda: view.model.rowCount() >= 2 * PAGE_SIZE, timeout=10_000)
    # sorting by a metric column: the store orders all 100,000 runs
    acc_col = next(i for i, c in enumerate(view.model.columns) if c.kind == "metric" and c.key == "val_acc")
    view.table.horizontalHeader().setSortIndicator(acc_col, Qt.SortOrder.DescendingOrder)
    wait_idle(qtbot, ctx)
    best = ws.db.query("SELECT max(last_value) FROM metric_series s JOIN metric_keys k ON k.id = s.key_id "
                       "WHERE k.name = 'val_acc'")[0][0]
    assert view.model.runs[0].metrics["val_acc"].last == best
    assert view.model.rowCount() == PAGE_SIZE
    # filtering: counted by the store
    view.query.setText("params.lr < 0.001 and metrics.val_acc > 0.9 and status = finished")
    assert view.apply_query()
    wait_idle(qtbot, ctx)
    expected = ws.db.query(
        "SELECT count(*) FROM runs r WHERE status = 'finished' "
        "AND id IN (SELECT run_id FROM params WHERE key = 'lr' AND value_num < 0.001) "
        "AND id IN (SELECT run_id FROM metric_series WHERE key_id = (SELECT id FROM metric_keys WHERE name = "
        "'val_acc') AND last_value > 0.9)")[0][0]
    assert view.model.total == expected > 0
    win.close()
