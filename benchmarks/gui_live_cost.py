"""Live-charting cost: CPU of the window while five runs log 100 points/s each, and its memory over minutes.

    python benchmarks/gui_live_cost.py [--runs 5] [--rate 100] [--seconds 60] [--minutes 10]

Five trainer subprocesses log through mlops_desktop.tracking (``loss`` at --rate points/s, ``val_acc`` once a
second) into the workspace the window shows; the five runs are selected, so the charts tab plots them live. The
window's process CPU time (GUI thread and its workers; the trainers are other processes) is measured over
--seconds and compared with the same window idle, in the same run, before the trainers start. Then the trainers
go on for --minutes while the window's resident memory is sampled every 5 s: growth is the last sample against
the first one after a one-minute warm-up. The machine is shared: CPU time, not wall time, is what is compared.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_common import ROOT, emit  # noqa: E402

TRAINER = r"""
import math, sys, time
import mlops_desktop.tracking as mt
home, seconds, rate, index = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
with mt.start_run(experiment="live-cost", name=f"live-{index}", home=home, capture_git=False,
                  params={"lr": 0.001 * (index + 1), "seed": index}) as run:
    mt.log_metric("loss", 1.0, step=0)
    mt.flush()
    print(run.uuid, flush=True)
    t0 = time.time()
    i = 1
    while time.time() - t0 < seconds:
        mt.log_metric("loss", 1.0 / (1 + i * 1e-3) + 0.02 * math.sin(i / 7 + index), step=i)
        if i % int(rate) == 0:
            mt.log_metric("val_acc", 1 - 0.5 / (1 + i * 1e-3), step=i)
        i += 1
        time.sleep(max(0.0, t0 + i / rate - time.time()))
"""


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def pump(app, seconds: float, until=None) -> bool:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.005)
    return False


LAST_GUI_THREAD_SHARE = [0.0]   # of the last cpu_share: the part the GUI thread used (the rest: workers)


def cpu_share(app, seconds: float) -> float:
    """Percent of one core this process used over ``seconds`` of its event loop."""
    from PySide6.QtCore import QEventLoop, QTimer

    wall0, cpu0, gui0 = time.perf_counter(), time.process_time(), time.thread_time()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()   # a real event loop: timers and worker results arrive as they would for a user
    wall = time.perf_counter() - wall0
    LAST_GUI_THREAD_SHARE[0] = (time.thread_time() - gui0) / wall * 100
    return (time.process_time() - cpu0) / wall * 100


def _PaintCounter(counts: dict, name: str):  # noqa: N802 - builds a QObject subclass once Qt is imported
    from PySide6.QtCore import QEvent, QObject

    class PaintCounter(QObject):
        def eventFilter(self, _obj, event) -> bool:  # noqa: N802 - Qt API
            if event.type() == QEvent.Type.Paint:
                counts[name] += 1
            return False

    return PaintCounter()


class count_events:  # noqa: N801 - used like a context of counters
    """Wraps the methods a live refresh goes through and counts their calls (only with --counts: the wrappers
    cost a little CPU themselves)."""

    def __init__(self, view) -> None:
        import pyqtgraph as pg

        from mlops_desktop.gui import charts, charts_panel, compare, series_math

        store = view.ctx.workspace.tracking
        targets = {
            "plot_loads": (charts.MetricPlot, "_on_loaded"),
            "curve_draws": (charts.MetricPlot, "_draw"),
            "load_tasks": (charts, "load_many"),
            "full_reads": (type(store), "metric_history"),
            "tail_reads": (type(store), "metric_history_tail"),
            "pyramids": (series_math.MinMaxPyramid, "__init__"),
            "plot_widgets_built": (pg.PlotWidget, "__init__"),
            "charts_rebuilds": (charts_panel.ChartsPanel, "_rebuild"),
            "compare_set_runs": (compare.CompareView, "set_runs"),
            "db_changes": (type(view), "_on_db_changed"),
        }
        self.counts = {"repaints": 0, **dict.fromkeys(targets, 0)}
        self._filtered = []
        self._paints = []
        for key, plot in view.charts.plots.items():   # repaints of each plot's view, and of all of them
            name = f"repaints_{key}"
            self.counts[name] = 0
            for counter in (_PaintCounter(self.counts, "repaints"), _PaintCounter(self.counts, name)):
                plot.plot_widget.viewport().installEventFilter(counter)
                self._paints.append(counter)
                self._filtered.append((plot.plot_widget.viewport(), counter))
        self.saved = []
        for name, (owner, attr) in targets.items():
            original = getattr(owner, attr)
            self.saved.append((owner, attr, original))

            def wrapper(*a, _o=original, _n=name, **k):
                self.counts[_n] += 1
                return _o(*a, **k)

            setattr(owner, attr, wrapper)

    def per_second(self, seconds: float) -> dict:
        return {k: round(v / seconds, 1) for k, v in self.counts.items()}

    def undo(self) -> None:
        for viewport, counter in self._filtered:
            viewport.removeEventFilter(counter)
        for owner, attr, original in self.saved:
            setattr(owner, attr, original)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--counts", action="store_true",
                        help="also count, per second of the live window, repaints, loads, reads and plot rebuilds")
    args = parser.parse_args()

    from PySide6.QtCore import QItemSelectionModel
    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context, make_window
    from mlops_desktop.workspace import Workspace

    home = Path(tempfile.mkdtemp(prefix="mlops-live-cost-")) / "ws"
    app = QApplication.instance() or QApplication([])
    theme.apply(app, "light")
    ws = Workspace.open(home)
    ctx = make_context(ws)
    win = make_window(ctx)
    win.resize(1280, 800)
    win.show()
    view = win.area("experiments")
    view.tabs.setCurrentIndex(0)
    pump(app, 2.0)
    idle = cpu_share(app, min(30.0, args.seconds))

    total_s = args.seconds + args.minutes * 60 + 60
    procs = [subprocess.Popen([sys.executable, "-c", TRAINER, str(home), str(total_s), str(args.rate), str(i)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, text=True)
             for i in range(args.runs)]
    try:
        uuids = [p.stdout.readline().strip() for p in procs]
        if not all(uuids):
            raise SystemExit("a trainer did not start: " + "".join(p.stderr.read() for p in procs if p.poll()))
        view.refresh()
        pump(app, 20, until=lambda: all(view.model.row_of(u) >= 0 for u in uuids))
        selection = view.table.selectionModel()
        selection.clearSelection()
        for u in uuids:
            selection.select(view.model.index(view.model.row_of(u), 0),
                             QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
        pump(app, 20, until=lambda: set(view.charts.plots) >= {"loss", "val_acc"}
             and all(u in view.charts.plots["loss"].series for u in uuids))
        pump(app, 10)   # warm-up: caches filled, plots built
        counter = count_events(view) if args.counts else None
        live = cpu_share(app, args.seconds)
        live_gui_thread = LAST_GUI_THREAD_SHARE[0]
        counts = counter.per_second(args.seconds) if counter is not None else None
        if counter is not None:
            counter.undo()
        points_seen = sum(view.charts.plots["loss"].series[u].x.shape[0] > 0 for u in uuids)

        samples: list[tuple[float, float]] = []
        started = time.perf_counter()
        while time.perf_counter() - started < args.minutes * 60:
            cpu_share(app, 5.0)
            samples.append((time.perf_counter() - started, rss_mb()))
        if not samples:   # --minutes 0: CPU only; memory is the one sample after the live window
            samples.append((0.0, rss_mb()))
        warm = [mb for t, mb in samples if t >= 60] or [mb for _t, mb in samples]
        first, last, peak = warm[0], warm[-1], max(warm)
        drawn = {u: int(view.charts.plots["loss"].series[u].spec.count) for u in uuids}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    ctx.tasks.shutdown(5000)
    win.close()
    ws.close()
    growth = (last - first) / first * 100
    print(f"window CPU: idle {idle:.1f} % of a core, {args.runs} live runs at {args.rate:.0f} points/s "
          f"{live:.1f} % ({live - idle:+.1f} points over idle); memory over {args.minutes:g} min of live charting "
          f"(after a 1-minute warm-up): {first:.0f} -> {last:.0f} MB ({growth:+.1f} %), peak {peak:.0f} MB; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    emit({"benchmark": "gui_live_cost", "runs": args.runs, "points_per_s_per_run": args.rate,
          "idle_cpu_percent_of_core": round(idle, 1), "live_cpu_percent_of_core": round(live, 1),
          "live_minus_idle_percent": round(live - idle, 1), "live_gui_thread_percent": round(live_gui_thread, 1), "goal_cpu_percent": 15, "meets_cpu_goal": live <= 15,
          "rss_mb_first": round(first, 1), "rss_mb_last": round(last, 1), "rss_mb_peak": round(peak, 1),
          "rss_growth_percent": round(growth, 1), "goal_rss_growth_percent": 10,
          "meets_memory_goal": abs(growth) <= 10, "minutes": args.minutes, "rss_samples": len(samples),
          "series_drawn": points_seen, "points_logged_per_run": drawn,
          "load_average_1m": round(os.getloadavg()[0], 1), "cpu_count": os.cpu_count(),
          **({"per_second": counts} if counts is not None else {})})


if __name__ == "__main__":
    main()
