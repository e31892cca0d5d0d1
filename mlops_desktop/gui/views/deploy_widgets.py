"""Small pieces the Deployments area's panels share: state colours and dots, a state chip, headings, empty states."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

# One palette for targets, deployments, replicas and revision outcomes: green = seen healthy, blue = moving,
# red = failed, amber = rolled back / reverted / degraded, grey = unknown or not started.
_GREEN, _BLUE, _RED, _AMBER, _GREY = "green", "blue", "red", "amber", "grey"
STATE_KIND = {
    "healthy": _GREEN, "ready": _GREEN, "running": _GREEN, "reachable": _GREEN, "ok": _GREEN,
    "progressing": _BLUE, "pending": _BLUE, "starting": _BLUE, "updating": _BLUE, "rolling_back": _AMBER,
    "failed": _RED, "unhealthy": _RED, "crashed": _RED, "unreachable": _RED, "error": _RED,
    "rolled_back": _AMBER, "reverted": _AMBER, "degraded": _AMBER, "paused": _AMBER,
    "unknown": _GREY, "stopped": _GREY, "deleted": _GREY, "superseded": _GREY,
}
KIND_COLORS = {
    "light": {_GREEN: "#1a7f37", _BLUE: "#0969da", _RED: "#cf222e", _AMBER: "#9a6700", _GREY: "#6e7781"},
    "dark": {_GREEN: "#3fb950", _BLUE: "#58a6ff", _RED: "#f85149", _AMBER: "#d29922", _GREY: "#8b949e"},
}


def _mode() -> str:
    from mlops_desktop.gui.theme import current_mode

    return current_mode()


def state_color(state: str) -> QColor:
    return QColor(KIND_COLORS[_mode()][STATE_KIND.get(state, _GREY)])


_DOTS: dict[tuple[str, str], QIcon] = {}


def state_dot(state: str) -> QIcon:
    """A filled circle in the state's colour (cached per theme and colour)."""
    kind = STATE_KIND.get(state, _GREY)
    key = (_mode(), kind)
    if key not in _DOTS:
        pixmap = QPixmap(20, 20)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(state_color(state))
        painter.drawEllipse(4, 4, 12, 12)
        painter.end()
        _DOTS[key] = QIcon(pixmap)
    return _DOTS[key]


def words(state: str) -> str:
    """'rolled_back' -> 'rolled back'."""
    return state.replace("_", " ")


class StateChip(QLabel):
    """A rounded label in the state's colour: 'healthy', 'rolled back', 'unknown: dockerd does not answer'."""

    def __init__(self, state: str = "", text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.state = ""
        self.set_state(state, text)

    def set_state(self, state: str, text: str = "") -> None:
        self.state = state
        self.setText(text or words(state))
        self.setVisible(bool(state))
        self.restyle()

    def restyle(self) -> None:
        color = state_color(self.state)
        fill = QColor(color)
        fill.setAlpha(40)
        self.setStyleSheet(f"QLabel {{ color: {color.name()}; background: rgba({fill.red()},{fill.green()},"
                           f"{fill.blue()},{fill.alpha()}); border: 1px solid {color.name()}; border-radius: 8px;"
                           " padding: 1px 8px; font-weight: 600; }")


def heading(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("heading")
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def muted(text: str = "", *, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setObjectName("muted")
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    return label


def empty_state(title: str, text: str, cli: str = "") -> QWidget:
    """A centred title, a sentence and the terminal command that does the same."""
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.addStretch(2)
    head = heading(title)
    head.setAlignment(Qt.AlignmentFlag.AlignCenter)
    layout.addWidget(head)
    body = muted(text)
    body.setAlignment(Qt.AlignmentFlag.AlignCenter)
    body.setMaximumWidth(560)
    row = QHBoxLayout()
    row.addStretch(1)
    row.addWidget(body, 4)
    row.addStretch(1)
    layout.addLayout(row)
    if cli:
        hint = muted(cli, wrap=False)
        hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addSpacing(6)
        layout.addWidget(hint)
    layout.addStretch(3)
    return page


def when(ts: float | None, now: float | None = None) -> str:
    """'14:03:12' today, 'Mar 02 14:03' this year, '2024-03-02 14:03' before."""
    if ts is None:
        return ""
    t, today = time.localtime(ts), time.localtime(now or time.time())
    if t[:3] == today[:3]:
        return time.strftime("%H:%M:%S", t)
    if t.tm_year == today.tm_year:
        return time.strftime("%b %d %H:%M", t)
    return time.strftime("%Y-%m-%d %H:%M", t)
