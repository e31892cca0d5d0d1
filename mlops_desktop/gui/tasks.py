"""The one GUI task runner: core functions run on a QThreadPool with progress, cancel and errors sent to one channel.

A core function has the shape ``fn(*args, progress: Progress, **kwargs)`` and raises ``Cancelled`` when
``progress.check()`` finds it was asked to stop. ``TaskRunner.submit`` runs it off the GUI thread and returns a
``Task`` (a QObject living in the GUI thread) whose signals deliver progress (only when it changes), the result,
the error or the cancellation. Every error goes to the notification channel. Submitting with a ``key`` cancels the
previous task with the same key and drops its result (one task per view: a newer query replaces an older one).
"""

from __future__ import annotations

import itertools
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from mlops_desktop.errors import Cancelled
from mlops_desktop.gui.notify import Notifications
from mlops_desktop.gui.worker_state import keep_thread_state
from mlops_desktop.progress import Progress

RUNNING, SUCCEEDED, FAILED, CANCELLED = "running", "succeeded", "failed", "cancelled"


class _WorkerSignals(QObject):
    """Emitted from the worker thread; delivered (queued) to the Task in the GUI thread."""

    progress = Signal(float, str)
    result = Signal(object)
    error = Signal(object, str)
    cancelled = Signal()


class Task(QObject):
    """One piece of work as the GUI sees it: title, state, fraction, message; cancel() asks it to stop."""

    progressed = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)       # the exception
    was_cancelled = Signal()
    ended = Signal()              # after any of the three above

    def __init__(self, task_id: int, title: str, key: str | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.task_id = task_id
        self.title = title
        self.key = key
        self.state = RUNNING
        self.fraction = 0.0
        self.message = ""
        self.error: BaseException | None = None
        self.traceback = ""
        self.result: Any = None
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.discarded = False     # replaced by a newer task with the same key: its outcome is ignored
        self.cancel_event = threading.Event()
        self.signals = _WorkerSignals()
        self.signals.progress.connect(self._on_progress)
        self.signals.result.connect(self._on_result)
        self.signals.error.connect(self._on_error)
        self.signals.cancelled.connect(self._on_cancelled)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def cancel(self) -> None:
        self.cancel_event.set()

    @Slot()
    def abandon(self) -> None:
        """The widget waiting for this task is gone: stop it and deliver nothing."""
        self.discarded = True
        self.cancel_event.set()

    @Slot(float, str)
    def _on_progress(self, fraction: float, message: str) -> None:
        if self.state != RUNNING or (fraction, message) == (self.fraction, self.message):
            return
        self.fraction, self.message = fraction, message
        if not self.discarded:
            self.progressed.emit(fraction, message)

    def _end(self, state: str) -> None:
        self.state = state
        self.ended_at = time.time()

    @Slot(object)
    def _on_result(self, result: Any) -> None:
        self.result = result
        self.fraction = 1.0
        self._end(SUCCEEDED)
        if not self.discarded:
            self.succeeded.emit(result)
        self.ended.emit()

    @Slot(object, str)
    def _on_error(self, exc: BaseException, tb: str) -> None:
        self.error, self.traceback = exc, tb
        self._end(FAILED)
        if not self.discarded:
            self.failed.emit(exc)
        self.ended.emit()

    @Slot()
    def _on_cancelled(self) -> None:
        self._end(CANCELLED)
        if not self.discarded:
            self.was_cancelled.emit()
        self.ended.emit()


class _Runnable:
    """One task's work, started as ``pool.start(runnable.run)``. Not a QRunnable subclass: PySide's pool kept a
    reference to some of those after they ran (a race when a task ends before start() returns), and with it
    the task's arguments and signals object - a leak of every kind of task (issue 14's memory growth)."""

    def __init__(self, fn: Callable[..., Any], args: tuple, kwargs: dict, signals: _WorkerSignals,
                 cancel_event: threading.Event, pass_progress: bool) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = signals
        self.cancel_event = cancel_event
        self.pass_progress = pass_progress

    def run(self) -> None:
        keep_thread_state()   # thread-locals (the store's SQLite connection) live as long as the thread
        signals = self.signals
        progress = Progress(lambda f, m: signals.progress.emit(float(f), str(m)), cancel_event=self.cancel_event)
        try:
            progress.check()
            if self.pass_progress:
                result = self.fn(*self.args, progress=progress, **self.kwargs)
            else:
                result = self.fn(*self.args, **self.kwargs)
        except Cancelled:
            signals.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the notification channel
            if self.cancel_event.is_set():
                signals.cancelled.emit()
            else:
                signals.error.emit(exc, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        else:
            # The work finished: its result is real even if a cancel arrived too late to stop it (the data may
            # already be stored). Tasks whose result nobody wants any more are marked discarded, not dropped here.
            signals.result.emit(result)


def _is_user_error(exc: BaseException) -> bool:
    from mlops_desktop.errors import MlopsError

    return isinstance(exc, MlopsError)


class TaskRunner(QObject):
    """Runs core functions on a thread pool. ``tasks`` lists running and recently ended work (for the tasks panel)."""

    task_added = Signal(object)    # Task
    task_ended = Signal(object)    # Task

    def __init__(self, notifications: Notifications, parent: QObject | None = None, *,
                 max_threads: int | None = None, keep_ended: int = 30) -> None:
        super().__init__(parent)
        self.notifications = notifications
        self.pool = QThreadPool(self)
        self.pool.setExpiryTimeout(-1)   # pool threads stay: each keeps its one SQLite connection (worker_state.py)
        if max_threads:
            self.pool.setMaxThreadCount(max_threads)
        self.tasks: list[Task] = []
        self._ids = itertools.count(1)
        self._keep_ended = keep_ended

    def submit(self, fn: Callable[..., Any], *args: Any, title: str = "", key: str | None = None,
               on_done: Callable[[Any], object] | None = None, on_error: Callable[[BaseException], object] | None = None,
               pass_progress: bool = True, quiet: bool = False, owner: QObject | None = None,
               **kwargs: Any) -> Task:
        """Run ``fn(*args, progress=..., **kwargs)`` off the GUI thread.

        ``key``: cancel and drop any running task with the same key first. ``on_done(result)`` and
        ``on_error(exc)`` run in the GUI thread. ``quiet``: no completion notice (errors are always posted).
        ``owner``: a widget whose destruction cancels the task and drops its callbacks.
        """
        if key is not None:
            for old in self.tasks:
                if old.key == key and old.running:
                    old.discarded = True
                    old.cancel()
        task = Task(next(self._ids), title or getattr(fn, "__name__", "task"), key, self)
        if owner is not None:
            owner.destroyed.connect(task.abandon)
        if on_done is not None:
            task.succeeded.connect(on_done)
        if on_error is not None:
            task.failed.connect(on_error)
        task.failed.connect(lambda exc, t=task: self._report_error(t, exc))
        if not quiet:
            task.succeeded.connect(lambda _r, t=task: self.notifications.success(f"{t.title}: done"))
        task.ended.connect(lambda t=task: self._on_ended(t))
        self.tasks.append(task)
        self.task_added.emit(task)
        self.pool.start(_Runnable(fn, args, kwargs, task.signals, task.cancel_event, pass_progress).run)
        return task

    def _report_error(self, task: Task, exc: BaseException) -> None:
        from mlops_desktop.gui.notify import describe

        self.notifications.error(task.title, describe(exc), "" if not task.traceback or _is_user_error(exc)
                                 else task.traceback)

    def _on_ended(self, task: Task) -> None:
        self.task_ended.emit(task)
        ended = [t for t in self.tasks if not t.running]
        for old in ended[:-self._keep_ended]:
            self.tasks.remove(old)
            old.deleteLater()

    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.running]

    def cancel_all(self) -> None:
        for task in self.running():
            task.cancel()

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        """Cancel everything and wait for the workers; True when all stopped in time."""
        self.cancel_all()
        return self.pool.waitForDone(timeout_ms)
