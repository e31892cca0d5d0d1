"""Memory over many selection changes in the Experiments area: flat, or a leak.

    python benchmarks/gui_selection_memory.py [--changes 500] [--runs 60] [--points 5000]

A workspace of --runs finished runs (4 metrics of --points points each, params, tags) is shown in the window;
the script changes the selection --changes times (one run, then two, three, back to one; each change waits until
the charts, details and compare views have loaded what they show), with the Charts, Details and Compare tabs in
turn. Resident memory of the idle window (same run, before any selection) and after the first 50 changes (the
caches and widgets warm) is compared with the end. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_common import emit  # noqa: E402
from gui_live_cost import pump, rss_mb  # noqa: E402


def fill(home: Path, runs: int, points: int) -> None:
    import numpy as np

    from mlops_desktop.workspace import Workspace

    rng = np.random.default_rng(0)
    with Workspace.open(home) as ws:
        store = ws.tracking
        exp = store.get_or_create_experiment("selection")
        steps = np.arange(points, dtype=np.int64)
        for i in range(runs):
            run = store.create_run(exp.id, name=f"run-{i:03d}", params={"lr": 10 ** -rng.uniform(1, 4), "depth": i % 6},
                                   tags={"group": f"g{i % 4}"})
            for key in ("loss", "val_loss", "acc", "lr_schedule"):
                store.log_metric_arrays(run.uuid, key, steps, steps * 10 + 1_700_000_000_000,
                                        rng.normal(0, 1, points).cumsum())
            store.set_terminated(run.uuid, "finished")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--points", type=int, default=5000)
    args = parser.parse_args()

    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context, make_window
    from mlops_desktop.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="mlops-selection-")) / "ws"
    fill(home, args.runs, args.points)
    app = QApplication.instance() or QApplication([])
    theme.apply(app, "light")
    ws = Workspace.open(home)
    ctx = make_context(ws)
    win = make_window(ctx)
    win.resize(1280, 800)
    win.show()
    view = win.area("experiments")
    pump(app, 3.0, until=lambda: view.model.rowCount() == args.runs and not ctx.tasks.running())
    view.table.clearSelection()
    pump(app, 1.0)
    idle = rss_mb()
    selection = view.table.selectionModel()
    flags = QItemSelectionModel.SelectionFlag
    warm = None
    started = time.perf_counter()
    cpu0 = time.process_time()
    for change in range(args.changes):
        view.tabs.setCurrentIndex((change // 40) % 3)   # charts, details, compare in turn
        first = (change * 7) % args.runs
        count = 1 + change % 3
        selection.clearSelection()
        for k in range(count):
            row = (first + k * 11) % args.runs
            selection.select(view.model.index(row, 0), flags.Select | flags.Rows)
        view.table.setCurrentIndex(view.model.index(first, 0))
        pump(app, 10.0, until=lambda: not ctx.tasks.running() and not view._selection_timer.isActive()
             and view.charts.idle())
        if change == 49:
            warm = rss_mb()
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    pump(app, 1.0)
    end = rss_mb()
    ctx.tasks.shutdown(5000)
    win.close()
    ws.close()
    warm = warm or end
    growth = (end - warm) / warm * 100
    print(f"RSS: idle window {idle:.0f} MB; after 50 selection changes {warm:.0f} MB; after {args.changes} "
          f"{end:.0f} MB ({growth:+.1f} % since the 50th); {took / args.changes * 1000:.0f} ms wall, "
          f"{cpu / args.changes * 1000:.0f} ms CPU per change; load average {os.getloadavg()[0]:.1f}")
    emit({"benchmark": "gui_selection_memory", "changes": args.changes, "runs": args.runs,
          "points_per_series": args.points, "rss_mb_idle_window": round(idle, 1), "rss_mb_after_50": round(warm, 1),
          "rss_mb_end": round(end, 1), "growth_percent_after_warmup": round(growth, 1),
          "growth_vs_idle_percent": round((end - idle) / idle * 100, 1), "goal_growth_percent": 10,
          "meets_goal": abs(growth) <= 10, "ms_per_change_wall": round(took / args.changes * 1000, 1),
          "ms_per_change_cpu": round(cpu / args.changes * 1000, 1), "load_average_1m": round(os.getloadavg()[0], 1)})


if __name__ == "__main__":
    main()
