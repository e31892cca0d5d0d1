"""The live path through the whole Experiments area: another process logs, the table and the charts follow."""

from __future__ import annotations

import time

import numpy as np
from gui_helpers import wait_idle

from mlops_desktop.workspace import Workspace


def test_running_run_updates_table_and_charts(window, ctx, qtbot):
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("live")
    run = store.create_run(exp.id, name="training")
    store.log_metric_arrays(run.uuid, "loss", np.arange(5, dtype=np.int64), np.arange(5, dtype=np.int64),
                            np.linspace(1, 0.5, 5))
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    assert view.select_run(run.uuid)
    qtbot.waitUntil(lambda: "loss" in view.charts.plots and view.charts.idle(), timeout=5000)
    qtbot.waitUntil(lambda: view.watcher.live, timeout=3000)
    plot = view.charts.plots["loss"]
    other = Workspace.open(ctx.workspace.root)   # the training process
    try:
        started = time.perf_counter()
        other.tracking.log_metric_arrays(run.uuid, "loss", np.array([5], dtype=np.int64),
                                         np.array([5], dtype=np.int64), np.array([7.5]))
        qtbot.waitUntil(lambda: 7.5 in plot.drawn_data(run.uuid)[1], timeout=5000)
        latency = time.perf_counter() - started
        # a new metric appears as a new plot; the table shows its last value
        other.tracking.log_metric_arrays(run.uuid, "val_acc", np.array([5], dtype=np.int64),
                                         np.array([5], dtype=np.int64), np.array([0.875]))
        qtbot.waitUntil(lambda: "val_acc" in view.charts.plots, timeout=5000)
        other.tracking.set_terminated(run.uuid, "finished")
        qtbot.waitUntil(lambda: view.model.runs[view.model.row_of(run.uuid)].status == "finished", timeout=5000)
    finally:
        other.close()
    assert latency < 0.5
    qtbot.waitUntil(lambda: not view.watcher.live, timeout=5000)


def test_lost_runs_are_reaped_when_the_area_opens(ctx, qtbot):
    import subprocess
    import sys

    from mlops_desktop.gui.app import make_window

    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("crashy")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = store.create_run(exp.id, name="died", pid=proc.pid)   # its process is gone
    win = make_window(ctx)
    qtbot.addWidget(win)
    win.area("experiments")
    qtbot.waitUntil(lambda: store.get_run(run.uuid).status == "lost", timeout=5000)
    win.close()
