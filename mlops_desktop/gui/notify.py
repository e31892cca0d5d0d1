"""The one notification channel: errors, warnings and completions from every view and worker end up here."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

log = logging.getLogger("mlops_desktop.gui")

LEVELS = ("info", "success", "warning", "error")


@dataclass
class Notification:
    level: str  # info | success | warning | error
    title: str
    message: str = ""
    details: str = ""  # traceback for bugs; empty for user errors
    time: float = field(default_factory=time.time)


class Notifications(QObject):
    """Post with info()/success()/warning()/error()/exception(); widgets listen to ``posted``."""

    posted = Signal(object)  # Notification

    def __init__(self, parent: QObject | None = None, *, keep: int = 500) -> None:
        super().__init__(parent)
        self.history: list[Notification] = []
        self._keep = keep

    def post(self, note: Notification) -> Notification:
        self.history.append(note)
        del self.history[:-self._keep]
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(note.level, logging.INFO)
        log.log(level, "%s%s", note.title, f": {note.message}" if note.message else "")
        self.posted.emit(note)
        return note

    def info(self, title: str, message: str = "") -> Notification:
        return self.post(Notification("info", title, message))

    def success(self, title: str, message: str = "") -> Notification:
        return self.post(Notification("success", title, message))

    def warning(self, title: str, message: str = "") -> Notification:
        return self.post(Notification("warning", title, message))

    def error(self, title: str, message: str = "", details: str = "") -> Notification:
        return self.post(Notification("error", title, message, details))

    def exception(self, title: str, exc: BaseException) -> Notification:
        """A user-facing MlopsError is shown as its message; anything else is a bug and keeps its traceback."""
        from mlops_desktop.errors import MlopsError

        if isinstance(exc, MlopsError):
            return self.error(title, str(exc))
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return self.error(title, f"{type(exc).__name__}: {exc}", details)
