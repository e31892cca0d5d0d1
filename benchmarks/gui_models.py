"""Models area benchmark: the GUI thread's longest stall while the area does its slow work in workers.

    PYTHONPATH=. python benchmarks/gui_models.py

The window shows the Models area over a demo workspace (`mlops-desktop demo`, cached in bench-out/). A 5 ms timer
in the GUI thread records how late each tick fires (the stall). Phases: idle (the baseline, same run), switching
versions (each reads and verifies its bundle; twice: the first pays one-time imports in the worker, which hold
the GIL while a C extension initialises), starting a local server, watching it live while a load generator
(another process) sends requests (scrapes every 1.5 s; baseline: the same load with the tab hidden), restarting it with another version, Try it in-process
(loads the model in a worker), stopping it. Last line: one JSON object with each phase's worst and p99 stall (ms)
and the worst as a ratio of the idle baseline's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from gui_common import CACHE, emit  # noqa: E402

LOADGEN = r"""
import json, sys, time, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
body = json.dumps({"dataframe_split": {"columns": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
                                       "data": [[5.1, 3.5, 1.4, 0.2]]}}).encode()
end, n = time.time() + seconds, 0
while time.time() < end:
    req = urllib.request.Request(url + "/invocations", data=body, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    n += 1
print(n)
"""


class StallMeter:
    def __init__(self, interval_ms: int = 5) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(interval_ms)

    def tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(max(0.0, now - self.last - self.interval))
        self.last = now

    def take(self) -> dict[str, float]:
        gaps = sorted(self.gaps) or [0.0]
        self.gaps, self.last = [], time.perf_counter()
        return {"worst_ms": round(gaps[-1] * 1000, 1),
                "p99_ms": round(gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] * 1000, 1),
                "median_ms": round(statistics.median(gaps) * 1000, 2), "ticks": len(gaps)}


def pump(app, seconds: float, until=None) -> bool:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if until is not None and until():
            return True
        time.sleep(0.001)
    return False


def demo_workspace() -> Path:
    home = CACHE / "ws-models-demo"
    marker = home / ".complete"
    if not marker.exists():
        import shutil

        from mlops_desktop.demo import fill_demo

        shutil.rmtree(home, ignore_errors=True)
        fill_demo(home, with_torch=False)
        marker.write_text("ok", encoding="utf-8")
    return home


def main() -> None:
    import shutil
    import tempfile

    from PySide6.QtWidgets import QApplication

    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context, make_window
    from mlops_desktop.serving import manager
    from mlops_desktop.workspace import Workspace

    tmp = Path(tempfile.mkdtemp(prefix="mlops-models-bench-"))
    home = tmp / "ws"
    shutil.copytree(demo_workspace(), home)
    app = QApplication.instance() or QApplication([])
    theme.apply(app, "light")
    ws = Workspace.open(home)
    ctx = make_context(ws)
    window = make_window(ctx)
    window.resize(1600, 1000)
    window.show()
    window.navigate("models")
    view = window.areas["models"]
    idle = lambda: not ctx.tasks.running()  # noqa: E731
    view.show_item(model="iris-classifier", tab="aliases")
    pump(app, 30, lambda: view.page is not None and view.page.model.name == "iris-classifier" and idle())
    meter = StallMeter()
    phases: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}

    def phase(name: str, action, until, timeout: float = 120.0, settle: float = 0.3) -> None:
        meter.take()
        started = time.perf_counter()
        action()
        ok = pump(app, timeout, until)
        seconds[name] = round(time.perf_counter() - started, 2)
        pump(app, settle)
        phases[name] = meter.take() | {"completed": ok}

    phase("idle", lambda: None, lambda: False, timeout=3.0, settle=0.0)

    def switch_versions() -> None:
        view.show_item(tab="version")
        for v in (4, 3, 2, 1):
            view.show_item(model="iris-classifier", version=v)
            pump(app, 10, lambda v=v: view.detail is not None and view.detail.version.version == v and idle())

    phase("switch_versions", switch_versions, idle)
    phase("switch_versions_again", switch_versions, idle)   # modules imported, bundles in the page cache
    view.show_item(model="iris-classifier", version=2, tab="serve")
    pump(app, 10, lambda: view.current_version() == 2 and idle())
    serve = view.serve_panel
    phase("start_server", serve.start, lambda: serve.server is not None and serve.server.state == "running"
          and not serve.busy)
    url = serve.server.url
    # The same load with the Serve tab hidden (no scraping, no plots): what the machine's load alone costs the GUI
    # thread, the baseline of the next phase.
    view.show_item(tab="aliases")
    pump(app, 5, idle)
    load = subprocess.Popen([sys.executable, "-c", LOADGEN, url, "6"], stdout=subprocess.PIPE, text=True)
    phase("load_not_watched", lambda: None, lambda: load.poll() is not None, timeout=30.0)
    view.show_item(tab="serve")
    pump(app, 5, idle)
    load = subprocess.Popen([sys.executable, "-c", LOADGEN, url, "6"], stdout=subprocess.PIPE, text=True)
    phase("live_under_load", lambda: None, lambda: load.poll() is not None, timeout=30.0)
    requests = int((load.stdout.read() if load.stdout else "0").strip() or 0)
    live_points = len(serve.history)
    view.show_item(model="iris-classifier", version=3)
    pump(app, 10, lambda: view.current_version() == 3 and idle())
    phase("restart_other_version", serve.restart, lambda: serve.server is not None and serve.server.version == "3"
          and not serve.busy)
    view.show_item(tab="try")
    panel = view.try_panel
    pump(app, 10, lambda: panel.payload.toPlainText().strip() != "" and idle())
    serve.stop()
    pump(app, 60, lambda: not serve.busy)

    def try_five() -> None:
        for _ in range(5):
            panel.send()
            pump(app, 60, lambda: not panel.sending)

    phase("try_in_process_x5", try_five, lambda: not panel.sending)
    phase("try_in_process_x5_again", try_five, lambda: not panel.sending)
    statuses = panel.result.status if panel.result is not None else None
    meter.timer.stop()
    window.close()
    ctx.tasks.shutdown(5000)
    for s in manager.list_servers(ws):
        if s.state in ("running", "starting"):
            manager.stop(ws, s.name)
    ws.close()
    shutil.rmtree(tmp, ignore_errors=True)
    base = max(phases["idle"]["worst_ms"], 1.0)
    load_avg = os.getloadavg()[0]
    emit({"benchmark": "gui_models", "load_avg_1m": round(load_avg, 2), "cpus": os.cpu_count(),
          "phases": phases, "phase_seconds": seconds,
          "worst_vs_idle": {k: round(v["worst_ms"] / base, 1) for k, v in phases.items()},
          "live_vs_unwatched_p99": round(phases["live_under_load"]["p99_ms"]
                                         / max(phases["load_not_watched"]["p99_ms"], 0.1), 2),
          "load_requests": requests, "live_points": live_points, "try_status": statuses,
          "python": sys.version.split()[0]})


if __name__ == "__main__":
    main()
