"""Log panes of the Deployments area: a deployment's live logs (followed in a worker) and the image build log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFont, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.views.deploy_tasks import Follower, LineSink
from mlops_desktop.gui.views.deploy_widgets import heading, muted

DRAIN_MS = 100
MAX_LINES = 20_000


def log_view(placeholder: str) -> QPlainTextEdit:
    view = QPlainTextEdit()
    view.setReadOnly(True)
    view.setMaximumBlockCount(MAX_LINES)
    view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    font = QFont("monospace")
    font.setStyleHint(QFont.StyleHint.Monospace)
    view.setFont(font)
    view.setPlaceholderText(placeholder)
    return view


def append_lines(view: QPlainTextEdit, lines: list[str]) -> None:
    """Append a batch; keep the view at the bottom only if the user had not scrolled up to read."""
    if not lines:
        return
    bar = view.verticalScrollBar()
    at_bottom = bar.value() >= bar.maximum() - 2
    cursor = QTextCursor(view.document())
    cursor.movePosition(QTextCursor.MoveOperation.End)
    prefix = "\n" if not view.document().isEmpty() else ""
    cursor.insertText(prefix + "\n".join(lines))
    if at_bottom:
        bar.setValue(bar.maximum())


class LiveLogsPane(QWidget):
    """A deployment's logs, followed live in a worker while the pane is shown; stopped when it is left.

    ``follow(name)`` starts (or restarts for another deployment); ``stop()`` ends the worker. The stream comes from
    ``open_stream(name)`` (the service's ``logs(name, follow=True)``).
    """

    state_changed = Signal(str)

    def __init__(self, ctx: Any, open_stream: Callable[[str], Iterable[str]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.open_stream = open_stream
        self.title = heading("Logs")
        self.state = muted("", wrap=False)
        self.follow_box = QCheckBox("Follow")
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Stream new lines as the replicas write them")
        self.follow_box.toggled.connect(lambda on: self._follow_toggled(on))
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("show lines containing…")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMaximumWidth(260)
        self.view = log_view("Select a deployment to follow its logs")
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(lambda: self.view.clear())
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.state)
        top.addStretch(1)
        top.addWidget(self.filter)
        top.addWidget(self.follow_box)
        top.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self.name: str | None = None
        self.task: Any = None
        self.follower: Follower | None = None
        self.sink = LineSink()
        self.lines_seen = 0
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)

    @property
    def following(self) -> bool:
        return self.task is not None and self.task.running

    def follow(self, name: str | None) -> None:
        if name != self.name:
            self.stop()
            self.view.clear()
            self.lines_seen = 0
        self.name = name
        if name is None:
            self.view.setPlaceholderText("Select a deployment to follow its logs")
            self._set_state("")
            return
        if not self.follow_box.isChecked() or self.following or not self.isVisible():
            return   # not shown: showEvent starts it
        self.view.setPlaceholderText(f"Waiting for {name}'s first log line…")
        sink = self.sink = LineSink()
        opener = self.open_stream
        follower = self.follower = Follower(lambda: opener(name), sink)
        self._set_state(f"following {name}")
        self.task = self.ctx.tasks.submit(follower.run, title=f"Logs of {name}", key=f"deploy-logs-{id(self)}",
                                          quiet=True, owner=self,
                                          on_done=lambda _n, f=follower: self._ended(f, "the stream ended"),
                                          on_error=lambda exc, f=follower: self._failed(f, exc))
        self.task.was_cancelled.connect(lambda f=follower: self._ended(f, "stopped"))
        self.timer.start()

    def stop(self) -> None:
        """End the worker now (leaving the pane, another deployment, Follow off)."""
        follower, task = self.follower, self.task
        self.follower, self.task = None, None
        if follower is not None:
            follower.stop()
        if task is not None and task.running:
            task.cancel()
        self.drain()
        self.timer.stop()

    def drain(self) -> None:
        lines = self.sink.drain()
        if not lines:
            return
        self.lines_seen += len(lines)
        needle = self.filter.text()
        if needle:
            lines = [line for line in lines if needle in line]
        append_lines(self.view, lines)

    def _follow_toggled(self, on: bool) -> None:
        if on:
            self.follow(self.name)
        else:
            self.stop()
            self._set_state("paused")

    def _ended(self, follower: Follower, why: str) -> None:
        self.drain()
        if follower is self.follower:
            self.follower, self.task = None, None
            self.timer.stop()
            self._set_state(why)

    def _failed(self, follower: Follower, exc: BaseException) -> None:
        from mlops_desktop.gui.views.deploy_tasks import reason_of

        self._ended(follower, f"stopped: {reason_of(exc)}")

    def _set_state(self, text: str) -> None:
        self.state.setText(text)
        self.state_changed.emit(text)

    def hideEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        self.stop()   # leaving the pane (another tab, another area): no stream left open behind it
        if self.name is not None:
            self._set_state("stopped (pane left)")
        super().hideEvent(event)

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if self.name is not None and not self.following:
            self.follow(self.name)


class BuildLogPane(QWidget):
    """The image build log: ``start(ref, base)`` runs `images build` in a worker, streaming its log lines here;
    Cancel stops the build (the core leaves no tagged image). ``built(record)`` when it succeeds."""

    built = Signal(object)

    def __init__(self, ctx: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.title = heading("Build log")
        self.state = muted("", wrap=False)
        self.cancel_button = QPushButton("Cancel build")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(lambda: self.cancel())
        self.view = log_view("Build an image to see its log here")
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addWidget(self.state)
        top.addStretch(1)
        top.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        self.sink = LineSink()
        self.task: Any = None
        self.cancel_event: threading.Event | None = None
        self.record: Any = None
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_MS)
        self.timer.timeout.connect(self.drain)

    @property
    def building(self) -> bool:
        return self.task is not None and self.task.running

    def start(self, ref: str, base: str | None = None, docker_host: str | None = None, **options: Any) -> Any:
        """Build `ref`'s image (options: more keywords of `build_image`, e.g. tag, labels)."""
        from mlops_desktop.gui.views.deploy_tasks import build_image

        if self.building:
            return self.task
        self.view.clear()
        self.record = None
        sink = self.sink = LineSink()
        cancel = self.cancel_event = threading.Event()
        self.state.setText(f"building {ref}" + (f" on {docker_host}" if docker_host else "") + "…")
        self.cancel_button.setEnabled(True)
        self.task = self.ctx.tasks.submit(build_image, self.ctx.workspace, ref, base, sink.put, cancel, docker_host, options,
                                          title=f"Build image of {ref}", quiet=True, owner=self,
                                          on_done=lambda rec: self._done(rec),
                                          on_error=lambda exc: self._ended(f"failed: {_describe(exc)}"))
        self.task.was_cancelled.connect(lambda: self._ended("cancelled: no image was tagged"))
        self.timer.start()
        return self.task

    def cancel(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()
        if self.task is not None and self.task.running:
            self.task.cancel()
            self.state.setText("cancelling…")

    def drain(self) -> None:
        append_lines(self.view, self.sink.drain())

    def _done(self, record: Any) -> None:
        self.record = record
        size = getattr(record, "size_bytes", 0) or 0
        secs = getattr(record, "build_seconds", None)
        extra = [f"{size / 1e6:.0f} MB" if size else "", f"{secs:.1f} s" if secs else ""]
        self._ended(f"built {getattr(record, 'tag', '')}" + "".join(f" · {e}" for e in extra if e))
        self.built.emit(record)

    def _ended(self, text: str) -> None:
        self.drain()
        self.timer.stop()
        self.cancel_button.setEnabled(False)
        self.state.setText(text)


def _describe(exc: BaseException) -> str:
    from mlops_desktop.gui.notify import describe

    return describe(exc).splitlines()[0]
