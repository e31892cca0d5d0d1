"""Notices when the workspace database changed (this or another process committed), without busy polling.

While a running run is on screen a 100 ms timer reads ``store.change_counter()`` (PRAGMA data_version: a read of
shared memory, no disk I/O). Otherwise a QFileSystemWatcher on the database and its -wal file wakes us when a
writer touches them, with a slow 2 s timer as a fallback for file systems without change notification.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

log = logging.getLogger(__name__)

FAST_MS = 100
SLOW_MS = 2000


class ChangeWatcher(QObject):
    changed = Signal()

    def __init__(self, ctx: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.live = False
        self.checks = 0
        self._last: int | None = None
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.files = QFileSystemWatcher(self)
        self.files.fileChanged.connect(lambda _p: self._soon())
        self.files.directoryChanged.connect(lambda _p: self._watch_files())
        self._soon_timer = QTimer(self)
        self._soon_timer.setSingleShot(True)
        self._soon_timer.setInterval(5)  # one commit touches the database and its -wal: one check for both
        self._soon_timer.timeout.connect(self.check)
        self.reset()

    def reset(self) -> None:
        """(Re)start on ``ctx.workspace`` (after a workspace switch too)."""
        if self.files.files():
            self.files.removePaths(self.files.files())
        if self.files.directories():
            self.files.removePaths(self.files.directories())
        self.files.addPath(str(self.ctx.workspace.paths.root))
        self._watch_files()
        self._last = self._counter()
        self.set_live(self.live)

    def _watch_files(self) -> None:
        db = self.ctx.workspace.paths.db
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists() and str(path) not in self.files.files():
                self.files.addPath(str(path))

    def _soon(self) -> None:
        if not self._soon_timer.isActive():
            self._soon_timer.start()

    def set_live(self, live: bool) -> None:
        """Fast checks while something running is shown; slow otherwise."""
        self.live = live
        self.timer.start(FAST_MS if live else SLOW_MS)

    def stop(self) -> None:
        self.timer.stop()
        self._soon_timer.stop()

    def _counter(self) -> int | None:
        try:
            return int(self.ctx.workspace.tracking.change_counter())
        except Exception as exc:  # noqa: BLE001 - a vanished workspace must not spam; log once per state
            log.debug("change check failed: %s", exc)
            return None

    def check(self) -> bool:
        self.checks += 1
        value = self._counter()
        if value is None or value == self._last:
            return False
        self._last = value
        self.changed.emit()
        return True


class RefreshPace:
    """How long live refreshes wait after each other: `min_s` while they are cheap, longer as they cost more, so
    that a steady stream keeps the live plots near `budget` of a core (measured: one live run is redrawn at every
    commit, ~90 ms apart; five runs of two plots ~120 ms apart).

    `refreshed()` is called as each refresh starts. `cpu()` is a running total of what the live plots have cost (their
    reads in the workers, their draws and their paints); its growth since the previous refresh is the cost of one
    refresh, and the wait that spends `budget` of a core on it is cost / budget, followed halfway each time so that
    one slow refresh does not swing it."""

    def __init__(self, min_s: float, max_s: float, budget: float, *, clock: Any = None, cpu: Any = None) -> None:
        self.min_s, self.max_s, self.budget = min_s, max_s, budget
        self.interval = min_s
        self._clock = clock or time.monotonic
        self._cpu = cpu or time.process_time
        self._last: tuple[float, float] | None = None

    def refreshed(self) -> None:
        now, cpu = self._clock(), self._cpu()
        if self._last is not None:
            wanted = max(cpu - self._last[1], 0.0) / self.budget  # < 0: a plot was closed
            self.interval = min(max(0.5 * (self.interval + wanted), self.min_s), self.max_s)
        self._last = (now, cpu)

    def wait(self, now: float) -> float:
        """Seconds from `now` until the next refresh may run (≤ 0: at once)."""
        return (self._last[0] + self.interval - now) if self._last is not None else 0.0
