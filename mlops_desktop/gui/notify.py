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
        log.log(level, "%s%s%s", note.title, f": {note.message}" if note.message else "",
                f"\n{note.details.rstrip()}" if note.details else "")
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
        """A user-facing MlopsError is shown as its message; anything else is worded for the user and keeps the
        exception and its traceback in ``details`` (the notifications panel and the log show them)."""
        return self.error(title, describe(exc), technical_details(exc))


BUG_TEXT = "an unexpected internal error (a bug in MLOps Desktop); the details are in Notifications and the log"


def describe(exc: BaseException) -> str:
    """Words for the user, never a Python error text: an MlopsError's message; for an operating-system error, what
    went wrong and on which file; for anything else (a bug), a plain sentence."""
    from mlops_desktop.errors import MlopsError

    if isinstance(exc, MlopsError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{exc.strerror.lower()}{f': {where}' if where != '' else ''}"
    if isinstance(exc, MemoryError):
        return "not enough memory for this"
    return BUG_TEXT


def technical_details(exc: BaseException) -> str:
    """The traceback of a bug (empty for a user-facing MlopsError, whose message says everything)."""
    from mlops_desktop.errors import MlopsError

    if isinstance(exc, MlopsError):
        return ""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
