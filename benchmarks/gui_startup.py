"""Start-up benchmark: process start to a shown, usable window (first page of runs in the table), 100,000 runs.

    python benchmarks/gui_startup.py [--runs 100000] [--repeat 3]

Baseline in the same run: a bare PySide6 QApplication + empty QMainWindow shown (the floor any Qt app pays).
Also checks that torch, sklearn, polars and pandas are not imported at start-up. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from gui_common import ROOT, emit, many_runs_workspace

APP = r"""
import os, sys, time, json
t0 = time.perf_counter()
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication
from PySide6.QtCore import QTimer
app = QApplication([])
from mlops_desktop.workspace import Workspace
from mlops_desktop.gui import theme
from mlops_desktop.gui.app import make_context, make_window
ws = Workspace.open(sys.argv[1])
ctx = make_context(ws)
theme.apply(app, "light")
win = make_window(ctx)
win.resize(1280, 800)
win.show()
view = win.area("experiments")
def done():
    shown = time.perf_counter() - t0
    heavy = [m for m in ("torch", "sklearn", "polars", "pandas") if m in sys.modules]
    print(json.dumps({"seconds": shown, "rows": view.model.rowCount(), "total": view.model.total, "heavy": heavy}))
    app.quit()
view.model.loaded.connect(lambda: QTimer.singleShot(0, done))
app.exec()
ctx.tasks.shutdown()
"""

BASELINE = r"""
import os, time, json
t0 = time.perf_counter()
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from PySide6.QtWidgets import QApplication, QMainWindow, QTableView
from PySide6.QtCore import QTimer
app = QApplication([])
w = QMainWindow(); w.setCentralWidget(QTableView()); w.resize(1280, 800); w.show()
def done():
    print(json.dumps({"seconds": time.perf_counter() - t0}))
    app.quit()
QTimer.singleShot(0, done)
app.exec()
"""


def measure(code: str, *args: str) -> dict:
    # Time measured inside the child from interpreter start of user code; add interpreter start-up separately.
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"start-up run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    home = many_runs_workspace(args.runs)
    measure(APP, str(home))  # warm the OS file cache once
    ours = [measure(APP, str(home)) for _ in range(args.repeat)]
    base = [measure(BASELINE) for _ in range(args.repeat)]
    ours_s = statistics.median(r["seconds"] for r in ours)
    base_s = statistics.median(r["seconds"] for r in base)
    print(f"start-up to usable window ({args.runs:,} runs): {ours_s:.3f}s   bare Qt window: {base_s:.3f}s")
    emit({"benchmark": "gui_startup", "runs": args.runs, "startup_s": round(ours_s, 3),
          "baseline_bare_qt_s": round(base_s, 3), "ratio_vs_baseline": round(ours_s / base_s, 2),
          "goal_s": 1.5, "meets_goal": ours_s <= 1.5, "rows_shown": ours[-1]["rows"], "total": ours[-1]["total"],
          "heavy_modules_imported": ours[-1]["heavy"]})


if __name__ == "__main__":
    main()
