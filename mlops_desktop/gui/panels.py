"""Dock panels of the main window: running tasks with progress and cancel, notifications, and the in-app log."""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from mlops_desktop.gui.notify import Notification, Notifications, describe
from mlops_desktop.gui.tasks import RUNNING, Task, TaskRunner

LEVEL_COLORS = {"error": "#e5534b", "warning": "#d29922", "success": "#3fb950", "info": "#6e7781"}


class _TaskRow(QWidget):
    def __init__(self, task: Task, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task = task
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        self.label = QLabel(task.title)
        self.label.setMinimumWidth(140)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(10)
        self.message = QLabel("")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setObjectName("muted")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip(f"Cancel {task.title}")
        self.cancel.clicked.connect(lambda: task.cancel())
        layout.addWidget(self.label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.cancel)
        task.progressed.connect(self.update_view)
        task.ended.connect(self.update_view)
        self.update_view()

    def update_view(self, *_args: object) -> None:
        t = self.task
        self.bar.setValue(int(t.fraction * 1000))
        if t.state == RUNNING:
            self.message.setText(t.message)
        else:
            took = (t.ended_at or time.time()) - t.started_at
            self.message.setText(f"{t.state} in {took:.1f}s" + (f": {describe(t.error)}" if t.error else ""))
            self.cancel.setEnabled(False)


class TasksPanel(QWidget):
    """What runs in the background now (and what ended recently), each with progress and a Cancel button."""

    def __init__(self, runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.empty = QLabel("No background work.")
        self.empty.setObjectName("muted")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.empty)
        layout.addWidget(self.list)
        self.list.hide()
        runner.task_added.connect(self._on_added)
        self._listed: set[int] = set()

    def _on_added(self, task: Task) -> None:
        """List work that lasts (over 300 ms) or fails; quick successful refreshes would only be clutter."""
        if task.key is not None and task.key.startswith("_"):
            return  # internal queries of the views
        QTimer.singleShot(300, self, lambda t=task: t.running and self.add_task(t))
        task.failed.connect(lambda _e, t=task: self.add_task(t))

    def add_task(self, task: Task) -> None:
        if task.task_id in self._listed:
            return
        self._listed.add(task.task_id)
        item = QListWidgetItem()
        row = _TaskRow(task)
        item.setSizeHint(row.sizeHint())
        self.list.insertItem(0, item)
        self.list.setItemWidget(item, row)
        while self.list.count() > 30:
            self.list.takeItem(self.list.count() - 1)
        self.empty.hide()
        self.list.show()

    def rows(self) -> list[_TaskRow]:
        return [self.list.itemWidget(self.list.item(i)) for i in range(self.list.count())]


class NotificationsPanel(QListWidget):
    """Every notification of this session, newest first; a bug's traceback is in the tooltip."""

    def __init__(self, channel: Notifications, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        for note in channel.history:
            self.add(note)
        channel.posted.connect(self.add)

    def add(self, note: Notification) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(note.time))
        text = f"{stamp}  {note.title}" + (f"\n{note.message}" if note.message else "")
        item = QListWidgetItem(text)
        item.setForeground(QColor(LEVEL_COLORS.get(note.level, "#888")) if note.level != "info" else item.foreground())
        item.setToolTip(note.details or note.message)
        self.insertItem(0, item)
        while self.count() > 500:
            self.takeItem(self.count() - 1)


class _LogBridge(QObject):
    line = Signal(str)


class QtLogHandler(logging.Handler):
    """A logging handler that forwards records (from any thread) to the log view through a queued signal."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.bridge = _LogBridge()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bridge.line.emit(self.format(record))
        except RuntimeError:  # the bridge is gone at shutdown
            pass


class LogView(QPlainTextEdit):
    """The in-app log: everything logged under 'mlops_desktop' at INFO and above."""

    def __init__(self, handler: QtLogHandler, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.setFont(font)
        handler.bridge.line.connect(self.appendPlainText)
