"""What a live refresh costs, counted (not timed): no news reads one small tail and draws nothing; new points are
read as a tail and appended; table refreshes never rebuild plots; refreshes come at a bounded rate."""

from __future__ import annotations

import time

import numpy as np
from gui_helpers import wait_idle

from mlops_desktop.workspace import Workspace


class StoreCalls:
    """Counts the reads the plots make through the store (the real store, wrapped on this instance)."""

    def __init__(self, store, monkeypatch) -> None:
        self.full: list[str] = []
        self.tails: list[tuple[str, int]] = []
        full, tail = store.metric_history, store.metric_history_tail

        def metric_history(uuid, key):
            self.full.append(key)
            return full(uuid, key)

        def metric_history_tail(uuid, key, start):
            self.tails.append((key, start))
            return tail(uuid, key, start)

        monkeypatch.setattr(store, "metric_history", metric_history)
        monkeypatch.setattr(store, "metric_history_tail", metric_history_tail)

    def reset(self) -> None:
        self.full.clear()
        self.tails.clear()


def log(ws, uuid, key, start, n, value=0.5):
    steps = np.arange(start, start + n, dtype=np.int64)
    ws.tracking.log_metric_arrays(uuid, key, steps, steps, np.full(n, value))


def test_live_refresh_costs_its_new_points_and_never_rebuilds_plots(window, ctx, qtbot, monkeypatch):
    import pyqtgraph as pg

    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("live")
    run = store.create_run(exp.id, name="training")
    log(ctx.workspace, run.uuid, "loss", 0, 3000)
    log(ctx.workspace, run.uuid, "val_acc", 0, 3)
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    assert view.select_run(run.uuid)
    charts = view.charts
    qtbot.waitUntil(lambda: {"loss", "val_acc"} <= set(charts.plots) and charts.idle(), timeout=10_000)
    loss, val_acc = charts.plots["loss"], charts.plots["val_acc"]
    qtbot.waitUntil(lambda: loss.series[run.uuid].drawn == 3000, timeout=10_000)
    built = []
    original_init = pg.PlotWidget.__init__
    monkeypatch.setattr(pg.PlotWidget, "__init__", lambda self, *a, **k: (built.append(1),
                                                                           original_init(self, *a, **k))[1])
    calls = StoreCalls(store, monkeypatch)

    def refresh_and_settle() -> None:
        charts._refresh_live_now()
        qtbot.waitUntil(charts.idle, timeout=10_000)

    # no new points: one tail read per line (nothing comes back), no curve gets new data, nothing repaints
    refresh_and_settle()   # the layout settled (two plots side by side): drawn for their final width
    calls.reset()
    loss_draws, acc_draws = loss.draws, val_acc.draws
    refresh_and_settle()
    assert sorted(calls.tails) == [("loss", 3000), ("val_acc", 3)]
    assert calls.full == [] and (loss.draws, val_acc.draws) == (loss_draws, acc_draws)

    # new points of one metric: only the points after those held are read, and only that plot draws
    other = Workspace.open(ctx.workspace.root)   # the training process
    try:
        log(other, run.uuid, "loss", 3000, 40, value=9.0)
        calls.reset()
        refresh_and_settle()
        assert sorted(calls.tails) == [("loss", 3000), ("val_acc", 3)] and calls.full == []
        assert (loss.draws, val_acc.draws) == (loss_draws + 1, acc_draws)
        assert loss.series[run.uuid].drawn == 3040 and 9.0 in loss.drawn_data(run.uuid)[1]

        # the runs table re-reads the summaries (counts and last values changed): the same plots, no new
        # PlotWidget, and no second load of the live series (the live refresh already read its tail)
        calls.reset()
        view.model.reload(keep_loaded=True)
        qtbot.waitUntil(lambda: view.model.runs[view.model.row_of(run.uuid)].metrics["loss"].count == 3040,
                        timeout=10_000)
        wait_idle(qtbot, ctx)
        assert charts.plots["loss"] is loss and charts.plots["val_acc"] is val_acc
        assert built == [] and calls.tails == [] and calls.full == []

        # however often the database changes, live refreshes come at most every LIVE_MIN_MS
        from mlops_desktop.gui.charts_panel import LIVE_MIN_MS

        before = charts.live_refreshes
        started = time.monotonic()
        while time.monotonic() - started < 0.6:
            charts.invalidate_running()
            qtbot.wait(5)
        elapsed = time.monotonic() - started
        assert charts.live_refreshes - before <= elapsed * 1000 / LIVE_MIN_MS + 1
        # and what they cost is what paces them: the plots' loads, draws and paints were counted
        assert charts.plots_cpu_s() > 0 and loss.plot_widget.paint_cpu_s > 0
        assert built == []
    finally:
        other.close()
