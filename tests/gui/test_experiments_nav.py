"""Issue 14: opening a run from elsewhere, the sidebar following other processes, runs whose process is gone."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
from gui_helpers import make_runs, wait_idle
from PySide6.QtCore import Qt

from mlops_desktop.workspace import Workspace


def test_open_run_switches_experiment_and_lands_on_its_details(window, ctx, qtbot):
    """Broken 2: Jobs ▸ Open run landed on the old selection when another experiment was shown."""
    store = ctx.workspace.tracking
    wanted = make_runs(store, 3, experiment="first")
    make_runs(store, 250, experiment="second")
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    second = store.get_experiment_by_name("second").id
    view.experiments.setCurrentRow(next(i for i in range(view.experiments.count())
                                        if view.experiments.item(i).data(Qt.ItemDataRole.UserRole) == second))
    view.query.setText("params.lr < 0.005")
    view.apply_query()
    # without waiting for that query: the jobs view calls navigate at any moment
    window.navigate("experiments", run_uuid=wanted[1])
    qtbot.waitUntil(lambda: view.current_run() is not None and view.current_run().uuid == wanted[1], timeout=10_000)
    assert view.current_experiment_id() == store.get_experiment_by_name("first").id
    assert view.query.text() == "", "the filter that hid the run is cleared"
    assert view.tabs.currentWidget() is view.detail
    qtbot.waitUntil(lambda: view.detail.run is not None and view.detail.run.uuid == wanted[1], timeout=5000)
    # from "All runs", a run deep in the list (beyond the first page) is found too
    view.experiments.setCurrentRow(0)
    wait_idle(qtbot, ctx)
    deep = store.search_runs(order_by=["start_time DESC"], limit=1, offset=240).runs[0]
    window.navigate("experiments", run_uuid=deep.uuid)
    qtbot.waitUntil(lambda: view.current_run() is not None and view.current_run().uuid == deep.uuid, timeout=10_000)
    assert view.current_experiment_id() is None
    # the jobs view's own call (the keyword it uses) keeps working
    jobs_call = wanted[0]
    window.navigate("experiments", run_uuid=jobs_call)
    qtbot.waitUntil(lambda: view.current_run() is not None and view.current_run().uuid == jobs_call, timeout=10_000)


def test_sidebar_counts_and_new_experiments_follow_other_processes(window, ctx, qtbot):
    """Broken 6: counts and new experiments only appeared after F5."""
    store = ctx.workspace.tracking
    make_runs(store, 3, experiment="old")
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)

    def labels() -> list[str]:
        return [view.experiments.item(i).text() for i in range(view.experiments.count())]

    assert labels() == ["All runs  (3)", "old  (3)"]
    other = Workspace.open(ctx.workspace.root)   # a training process elsewhere
    try:
        make_runs(other.tracking, 2, experiment="fresh")
        make_runs(other.tracking, 1, experiment="old")
    finally:
        other.close()
    qtbot.waitUntil(lambda: labels() == ["All runs  (6)", "fresh  (2)", "old  (4)"], timeout=10_000)
    qtbot.waitUntil(lambda: view.model.total == 6, timeout=5000)
    assert view.count_label.text().startswith("6 runs")


def test_running_run_whose_process_is_gone(window, ctx, qtbot):
    """Broken 7: a 'running' run whose process is gone counted its duration forever."""
    store = ctx.workspace.tracking
    exp = store.get_or_create_experiment("remote")
    start = float(int(time.time()) - 3600)
    quiet = store.create_run(exp.id, name="remote-train", host="gpu-box-elsewhere", start_time=start)
    last = start + 600   # the last point came 50 minutes ago
    store.log_metric_arrays(quiet.uuid, "loss", np.array([0, 1]), np.array([int(start * 1000), int(last * 1000)]),
                            np.array([1.0, 0.5]))
    view = window.area("experiments")
    view.refresh()
    wait_idle(qtbot, ctx)
    row = view.model.row_of(quiet.uuid)
    status_col = next(i for i, c in enumerate(view.model.columns) if c.key == "status")
    duration_col = next(i for i, c in enumerate(view.model.columns) if c.key == "duration")
    assert view.model.data(view.model.index(row, status_col)) == ("no update since "
                                                                   + time.strftime("%H:%M", time.localtime(last)))
    assert view.model.data(view.model.index(row, duration_col)) == "10m 00s", "the duration stops at the last update"
    view.open_run(quiet.uuid)
    qtbot.waitUntil(lambda: view.detail.run is not None and view.detail.run.uuid == quiet.uuid, timeout=5000)
    assert "no update since" in view.detail.fields["duration"].text()
    assert view.detail.fields["duration"].text().startswith("10m 00s")
    # a local run whose process dies while the window is open is marked lost (as the CLI does), not at restart
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    died = store.create_run(exp.id, name="died", pid=proc.pid)
    view.refresh()
    wait_idle(qtbot, ctx)
    proc.kill()
    proc.wait()
    qtbot.waitUntil(lambda: store.get_run(died.uuid).status == "lost", timeout=15_000)
    qtbot.waitUntil(lambda: view.model.row_of(died.uuid) >= 0
                    and view.model.runs[view.model.row_of(died.uuid)].status == "lost", timeout=10_000)
