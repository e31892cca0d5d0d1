"""Python's cycle collector, run on the GUI thread only.

The interpreter runs its cycle collector in whichever thread happens to allocate when a generation passes its
threshold. When that thread is a worker and the garbage holds a Qt widget (a view whose attributes point back at it,
a model, a timer), shiboken runs the widget's C++ destructor on the worker: a segfault, at a random moment, far from
its cause. CI's pytest died of exactly that. ``GuiThreadCollector`` turns automatic collection off and runs it from
a timer on the GUI thread, generation by generation as the interpreter's own thresholds say.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

OBJECT_NAME = "mlops-gui-thread-collector"


class GuiThreadCollector(QObject):
    """Start once per application (``install``); ``stop`` collects everything on the calling thread and hands
    collection back to the interpreter as it found it."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 100) -> None:
        super().__init__(parent)
        self.setObjectName(OBJECT_NAME)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._was_enabled: bool | None = None
        self.collections = [0, 0, 0]  # by generation, since start

    @property
    def running(self) -> bool:
        return self._was_enabled is not None

    def start(self) -> None:
        if self.running:
            return
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer.start()

    def stop(self) -> None:
        if self._was_enabled is None:
            return
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
        self._was_enabled = None

    def check(self) -> int | None:
        """Collect the oldest generation past its threshold, as the interpreter would after an allocation; the
        generation collected, or None when none is due."""
        thresholds = gc.get_threshold()
        counts = gc.get_count()
        if counts[0] <= thresholds[0]:
            return None
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                self.collections[generation] += 1
                return generation
        return None  # pragma: no cover - generation 0 is past its threshold here


def install(app: QCoreApplication | None = None) -> GuiThreadCollector | None:
    """The application's collector, started (made once, a child of the application); None without an application.
    Call it on the GUI thread."""
    app = app or QCoreApplication.instance()
    if app is None:
        return None
    collector = app.findChild(GuiThreadCollector, OBJECT_NAME)
    if collector is None:
        collector = GuiThreadCollector(app)
    collector.start()
    return collector


def uninstall(app: QCoreApplication | None = None) -> bool:
    """Stop the application's collector, if one runs: everything collected now, on this thread. True when it did."""
    app = app or QCoreApplication.instance()
    collector = app.findChild(GuiThreadCollector, OBJECT_NAME) if app is not None else None
    if collector is None or not collector.running:
        return False
    collector.stop()
    return True
