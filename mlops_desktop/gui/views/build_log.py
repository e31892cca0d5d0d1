"""A reusable build-log pane: streams an image build's (or push's, or smoke test's) log live, with its state,
elapsed time and a Cancel button; the work runs in the task runner, never on the GUI thread. The Deployments area
embeds it (`BuildLogPane(ctx)`, then `pane.start_build("churn@production")`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from mlops_desktop.gui import theme
from mlops_desktop.gui.views.base import AppContext

MAX_LOG_LINES = 20_000
STATE_WORDS = {"idle": "Idle", "running": "Running", "succeeded": "Succeeded", "failed": "Failed",
               "cancelled": "Cancelled"}
# the theme's status colours are keyed by run states
_COLOR_OF = {"running": "running", "succeeded": "finished", "failed": "failed", "cancelled": "killed"}


class _Lines(QObject):
    """Carries log lines from the worker thread to the GUI thread (queued)."""

    line = Signal(str)


class BuildLogPane(QWidget):
    """The log of one piece of work at a time: `start_build`, `start_push`, `start_smoke`, or `start(fn, ...)` for
    any core function taking `on_log` and `cancel`. Emits `finished(result)` or `failed(exc)`, or `cancelled`."""

    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.task: Any = None
        self.state = "idle"
        self._cancel = threading.Event()
        self._started = 0.0
        self._ended: float | None = None
        self.title = QLabel("Build log")
        self.title.setObjectName("heading")
        self.state_label = QLabel(STATE_WORDS["idle"])
        self.elapsed = QLabel("")
        self.elapsed.setObjectName("muted")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the build; nothing is tagged")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(MAX_LOG_LINES)
        self.log.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.log.setFont(font)
        self.log.setPlaceholderText("Build an image to see its log here")
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        bar.addWidget(self.title)
        bar.addSpacing(12)
        bar.addWidget(self.state_label)
        bar.addWidget(self.elapsed)
        bar.addStretch(1)
        bar.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.log, 1)
        layout.addWidget(self.result_label)
        self._lines = _Lines(self)
        self._lines.line.connect(self._append)
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self._tick)
        cancel = self._cancel
        self.destroyed.connect(lambda *_: cancel.set())  # a closed pane stops its build

    # ---------------------------------------------------------------------------------------------- starting
    def start_build(self, ref: str, **options: Any) -> Any:
        """Build the image of `ref` (options as containers.build_image: base, tag, docker_host, ...)."""
        from mlops_desktop.containers import build_image

        return self.start(build_image, self.ctx.workspace, ref, title=f"Build image of {ref}", **options)

    def start_push(self, image: str, registry: str, **options: Any) -> Any:
        from mlops_desktop.containers import push_image

        return self.start(push_image, self.ctx.workspace, image, registry, title=f"Push {image}", cancellable=False,
                          **options)

    def start_smoke(self, image: str, ref: str | None = None, **options: Any) -> Any:
        from mlops_desktop.containers import smoke_test

        def run(ws: Any, image: str, ref: str | None, on_log: Callable[[str], None], **kw: Any) -> Any:
            on_log(f"smoke test of {image}: starting the container, waiting for /health ...")
            result = smoke_test(ws, image, ref, **kw)
            on_log(f"{'PASSED' if result.passed else 'FAILED'}: {result.rows} rows compared, "
                   f"{result.mismatches} mismatches, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms"
                   + (f"; {result.error}" if result.error else ""))
            return result

        return self.start(run, self.ctx.workspace, image, ref, title=f"Smoke test {image}", cancellable=False,
                          **options)

    def start(self, fn: Callable[..., Any], *args: Any, title: str, cancellable: bool = True, **kwargs: Any) -> Any:
        """Run `fn(*args, on_log=..., cancel=..., **kwargs)` in the task runner; one piece of work at a time."""
        if self.running:
            self.cancel()
        self._cancel = threading.Event()
        cancel = self._cancel
        emit = self._lines.line.emit
        self.log.clear()
        self.result_label.setText("")
        self.title.setText(title)
        self._started, self._ended = time.monotonic(), None
        self._set_state("running")
        self.cancel_button.setEnabled(cancellable)

        def work(progress: Any) -> Any:
            extra = {"cancel": cancel} if cancellable else {}
            return fn(*args, on_log=emit, **extra, **kwargs)

        self.task = self.ctx.tasks.submit(work, title=title, key=f"build-log-{id(self)}", owner=self, quiet=True,
                                          on_done=self._done, on_error=self._error)
        self.task.was_cancelled.connect(self._was_cancelled)
        self._timer.start()
        return self.task

    @property
    def running(self) -> bool:
        return self.state == "running"

    def cancel(self) -> None:
        if not self.running:
            return
        self._cancel.set()
        if self.task is not None:
            self.task.cancel()
        self.cancel_button.setEnabled(False)
        self._append("cancelling ...")

    # ---------------------------------------------------------------------------------------------- outcome
    def _append(self, line: str) -> None:
        bar = self.log.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 2
        self.log.appendPlainText(line)
        if at_end:  # follow the log unless the user scrolled up to read
            bar.setValue(bar.maximum())

    def _done(self, result: Any) -> None:
        self._finish("succeeded")
        self.result_label.setText(_describe(result))
        self.finished.emit(result)

    def _error(self, exc: BaseException) -> None:
        from mlops_desktop.containers import BuildCancelled

        if isinstance(exc, BuildCancelled):
            self._was_cancelled()
            return
        self._finish("failed")
        self.result_label.setText(str(exc))
        self.failed.emit(exc)

    def _was_cancelled(self) -> None:
        if self.state == "cancelled":
            return
        self._finish("cancelled")
        self.result_label.setText("Cancelled: nothing was tagged")
        self.cancelled.emit()

    def _finish(self, state: str) -> None:
        self._ended = time.monotonic()
        self._timer.stop()
        self._tick()
        self._set_state(state)
        self.cancel_button.setEnabled(False)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_label.setText(STATE_WORDS[state])
        color = theme.status_color(_COLOR_OF[state]).name() if state in _COLOR_OF else ""
        self.state_label.setStyleSheet(f"color: {color}; font-weight: 600;" if color else "")

    def _tick(self) -> None:
        if not self._started:
            return
        end = self._ended if self._ended is not None else time.monotonic()
        self.elapsed.setText(f"{end - self._started:.0f} s")


def _describe(result: Any) -> str:
    """One line about what the work produced (an ImageRecord, a SmokeResult, or anything else)."""
    tag = getattr(result, "tag", None)
    if tag is not None and hasattr(result, "size_bytes"):
        text = f"{tag}  {result.image_id[7:19]}  {result.size_bytes / 1e6:.0f} MB  built in {result.build_seconds:.1f} s"
        return text + (f"  pushed {result.digest}" if result.digest else "")
    if hasattr(result, "passed"):
        return (f"Smoke test {'passed' if result.passed else 'FAILED'}: {result.rows} rows, {result.mismatches} "
                f"mismatches, p50 {result.p50_ms} ms / p99 {result.p99_ms} ms")
    return "" if result is None else str(result)
