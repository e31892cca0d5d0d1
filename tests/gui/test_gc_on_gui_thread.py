"""Cycles holding Qt objects are collected on the GUI thread, never on a worker (a worker that collects a widget
segfaults the app: CI's pytest died so)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Sentinel:
    """Garbage in a cycle that says on which thread it was collected."""

    def __init__(self, seen: list[str]) -> None:
        self.me = self
        self.seen = seen

    def __del__(self) -> None:
        self.seen.append(threading.current_thread().name)


def churn_cycles(n: int) -> None:
    """Allocate like a busy worker: enough container objects to pass every generation's threshold."""
    keep = []
    for i in range(n):
        a: list[object] = [i]
        a.append(a)
        keep.append(a)
        if len(keep) > 1000:
            keep.clear()


def test_a_worker_that_allocates_never_collects_the_gui_threads_garbage(qapp, qtbot):
    from mlops_desktop.gui import collector

    gui = collector.install(qapp)
    assert gui is not None and gui.running and not gc.isenabled()
    assert collector.install(qapp) is gui   # one per application
    seen: list[str] = []
    Sentinel(seen)                           # garbage now: only the cycle collector frees it
    worker = threading.Thread(target=churn_cycles, args=(200_000,), name="worker")
    worker.start()
    worker.join()
    assert seen == []                        # the worker passed every threshold and collected nothing
    qtbot.waitUntil(lambda: seen != [], timeout=5000)
    assert seen == [threading.current_thread().name] and gui.collections[0] > 0
    collector.uninstall(qapp)
    assert gc.isenabled() and not gui.running


def test_check_collects_the_generation_the_thresholds_name(qapp):
    from mlops_desktop.gui.collector import GuiThreadCollector

    c = GuiThreadCollector(interval_ms=60_000)   # checked by hand here
    c.start()
    try:
        gc.collect()
        assert c.check() is None                  # nothing allocated since: nothing due
        churn_cycles(gc.get_threshold()[0] * 3)
        assert gc.get_count()[0] > gc.get_threshold()[0]
        assert c.check() in (0, 1, 2)
        assert gc.get_count()[0] <= gc.get_threshold()[0]
        due = sum(c.collections)
        for _ in range(gc.get_threshold()[1] + 1):   # generation 1 becomes due after threshold[1] young ones
            churn_cycles(gc.get_threshold()[0] * 3)
            c.check()
        assert c.collections[1] + c.collections[2] >= 1 and sum(c.collections) > due
    finally:
        c.stop()
        c.deleteLater()
    assert gc.isenabled()


def test_stop_keeps_collection_off_when_it_was_off(qapp):
    from mlops_desktop.gui.collector import GuiThreadCollector

    gc.disable()
    try:
        c = GuiThreadCollector()
        c.start()
        c.stop()
        assert not gc.isenabled()
    finally:
        gc.enable()


SCRIPT = textwrap.dedent("""
    import gc, sys, threading
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QStandardItemModel
    from PySide6.QtWidgets import QApplication, QTableView, QVBoxLayout, QWidget
    app = QApplication([])
    if sys.argv[1] == "collector":
        from mlops_desktop.gui import collector
        collector.install(app)
    gc.collect(); gc.freeze()

    class View(QWidget):
        def __init__(self):
            super().__init__()
            self.me = self                      # a cycle: only the cycle collector frees it
            layout = QVBoxLayout(self)
            self.table = QTableView(); layout.addWidget(self.table)
            self.model = QStandardItemModel(100, 5); self.table.setModel(self.model)
            self.timer = QTimer(); self.timer.timeout.connect(self.tick); self.timer.start(10)
            self.show()
        def tick(self):
            pass

    for _ in range(20):
        view = View(); app.processEvents(); view.close(); del view
    app.processEvents()
    def work():
        keep = []
        for i in range(200_000):
            a = [i]; a.append(a); keep.append(a)
            if len(keep) > 1000: keep.clear()
        gc.collect() if sys.argv[1] == "bare" else None
    worker = threading.Thread(target=work); worker.start(); worker.join()
    for _ in range(20):
        app.processEvents()
    from mlops_desktop.gui import collector
    collector.uninstall(app)
    print("views collected without a crash")
""")


@pytest.mark.parametrize("mode", ["collector", "bare"])
def test_widgets_in_cycles_with_a_busy_worker(tmp_path, mode):
    """The crash itself, in a child process: 20 views in cycles, a worker that allocates. With the collector the
    views die on the GUI thread; without it (bare: the worker collects, as the interpreter may) the process dies."""
    script = tmp_path / "views.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(script), mode], env=env, capture_output=True, text=True, timeout=120)
    if mode == "collector":
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "views collected without a crash" in proc.stdout
    else:
        assert proc.returncode != 0 and "views collected" not in proc.stdout   # what the collector prevents
