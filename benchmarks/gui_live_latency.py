"""Live benchmark: GUI thread stall while another process logs 1,000,000 points, and log-call-to-pixels latency.

    python benchmarks/gui_live_latency.py [--points 1000000] [--steady]

A trainer subprocess logs through mlops_desktop.tracking (batching writer, default flush interval) into the
workspace the window shows; the window shows that running run's charts. A 5 ms timer in the GUI thread measures
the longest gap between its ticks (the stall). Baseline in the same run: the same window with nobody logging.
Then the trainer logs 10 marker values 300 ms apart; latency = marker drawn in the plot - log call returned.
With --steady, 30 markers ride in a stream of 100 points/s, 20-40 points apart (so that they fall anywhere in the
writer's flush cycle: markers at one fixed distance would all wait the same part of it).
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_common import ROOT, emit  # noqa: E402

TRAINER = r"""
import json, random, sys, time
import mlops_desktop.tracking as mt
home, points, steady = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "steady"
with mt.start_run(experiment="live", name="live-run", home=home, capture_git=False) as run:
    mt.log_metric("loss", 1.0, step=0)
    mt.flush()
    print(json.dumps({"uuid": run.uuid}), flush=True)
    time.sleep(1.5)                      # let the window find and show the run
    print(json.dumps({"phase": "bulk", "t": time.time()}), flush=True)
    for i in range(1, points):
        mt.log_metric("loss", 1.0 / (1 + i * 1e-4), step=i)
        if i % 50_000 == 0:
            time.sleep(0.01)             # a training step does some work between logs
    mt.flush()
    print(json.dumps({"phase": "bulk_done", "t": time.time()}), flush=True)
    time.sleep(0.5)
    step = points
    for k in range(10 if not steady else 30):
        if steady:                       # markers inside a stream of 100 points/s: what a live run looks like
            for _ in range(random.randint(20, 40)):   # markers fall anywhere in the writer's flush cycle
                mt.log_metric("loss", 0.5, step=step)
                step += 1
                time.sleep(0.01)
        value = 1e6 + k
        mt.log_metric("loss", value, step=step)
        step += 1
        print(json.dumps({"marker": value, "t": time.time()}), flush=True)
        if not steady:
            time.sleep(0.3)
    mt.flush()
    time.sleep(0.5)
"""


class StallMeter:
    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.worst = 0.0
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(interval_ms)

    def tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - self.interval)
        self.last = now

    def reset(self) -> None:
        self.worst, self.last = 0.0, time.perf_counter()


def pump(app, seconds: float, until=None) -> bool:
    """Run the window's real event loop (timers and worker results arrive as they would for a user; a loop of
    processEvents() and sleeps would spend a few percent of a core of its own) for `seconds`, or until `until()`."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.perf_counter() + seconds
    loop = QEventLoop()
    met = [False]

    def poll() -> None:
        if until is not None and until():
            met[0] = True
            loop.quit()
        elif time.perf_counter() >= end:
            loop.quit()

    timer = QTimer()
    timer.timeout.connect(poll)
    timer.start(10)
    QTimer.singleShot(0, poll)
    loop.exec()
    timer.stop()
    return met[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--steady", action="store_true",
                        help="log the markers inside a steady stream of 100 points/s (30 markers, 0.2-0.4 s apart) "
                             "instead of after quiet spells")
    args = parser.parse_args()

    import numpy as np
    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context, make_window
    from mlops_desktop.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="mlops-live-"))
    home = tmp / "ws"
    app = QApplication.instance() or QApplication([])
    theme.apply(app, "light")
    ws = Workspace.open(home)
    ctx = make_context(ws)
    win = make_window(ctx)
    win.resize(1280, 800)
    win.show()
    view = win.area("experiments")
    meter = StallMeter()
    pump(app, 1.0)
    meter.reset()
    pump(app, 3.0)
    baseline_stall = meter.worst

    out_path = tmp / "trainer.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", TRAINER, str(home), str(args.points),
                                 "steady" if args.steady else "quiet"], stdout=out,
                                stderr=subprocess.PIPE, cwd=ROOT, text=True)

        def lines() -> list[dict]:
            return [json.loads(x) for x in out_path.read_text().splitlines() if x.strip()]

        if not pump(app, 60, until=lambda: any("uuid" in x for x in lines())):
            raise SystemExit("trainer did not start")
        uuid = next(x["uuid"] for x in lines() if "uuid" in x)
        view.refresh()
        pump(app, 10, until=lambda: view.model.row_of(uuid) >= 0)
        view.select_run(uuid)
        pump(app, 10, until=lambda: "loss" in view.charts.plots)
        plot = view.charts.plots["loss"]
        seen: dict[float, float] = {}

        def check_markers() -> None:
            if uuid not in plot.series:
                return
            _x, y = plot.drawn_data(uuid)
            big = y[y >= 1e6]
            now = time.time()
            for v in big.tolist():
                seen.setdefault(v, now)

        plot.data_loaded.connect(check_markers)
        pump(app, 30, until=lambda: any(x.get("phase") == "bulk" for x in lines()))
        meter.reset()
        pump(app, 600, until=lambda: any(x.get("phase") == "bulk_done" for x in lines()))
        live_stall = meter.worst
        pump(app, 30, until=lambda: proc.poll() is not None)
        pump(app, 1.0)
        err = proc.stderr.read() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"trainer failed:\n{err}")
    info = lines()
    bulk_start = next(x["t"] for x in info if x.get("phase") == "bulk")
    bulk_done = next(x["t"] for x in info if x.get("phase") == "bulk_done")
    latencies = [seen[x["marker"]] - x["t"] for x in info if "marker" in x and x["marker"] in seen]
    drawn_points = int(view.charts.plots["loss"].series[uuid].spec.count) if uuid in plot.series else 0
    ctx.tasks.shutdown(5000)
    win.close()
    ws.close()
    p50 = statistics.median(latencies) if latencies else float("nan")
    worst = max(latencies) if latencies else float("nan")
    print(f"stall while logging {args.points:,} points: {live_stall * 1000:.1f} ms (idle window: "
          f"{baseline_stall * 1000:.1f} ms); log->pixels p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms "
          f"({len(latencies)}/{30 if args.steady else 10} markers seen{', in a 100 points/s stream' if args.steady else ''}); trainer logged at {args.points / (bulk_done - bulk_start):,.0f} pts/s")
    emit({"benchmark": "gui_live_latency", "points": args.points, "steady_stream": args.steady,
          "stall_ms": round(live_stall * 1000, 1), "baseline_idle_stall_ms": round(baseline_stall * 1000, 1),
          "ratio_vs_baseline": round(live_stall / max(baseline_stall, 1e-4), 1), "goal_stall_ms": 100,
          "meets_stall_goal": live_stall <= 0.1, "latency_p50_ms": round(p50 * 1000),
          "latency_max_ms": round(worst * 1000), "goal_latency_ms": 250, "markers_seen": len(latencies),
          "meets_latency_goal": bool(latencies) and worst <= 0.25, "summary_count_seen": drawn_points,
          "writer_flush_interval_ms": 100, "numpy": np.__version__})


if __name__ == "__main__":
    main()
