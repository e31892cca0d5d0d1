"""The command palette (Ctrl+K): type to jump to any area, experiment, run or action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget


@dataclass
class PaletteEntry:
    label: str
    kind: str            # "area" | "action" | "experiment" | "run"
    callback: Callable[[], object]
    detail: str = ""


# A provider returns entries matching the typed text (it may query the store; keep it to a few milliseconds).
Provider = Callable[[str], list[PaletteEntry]]


def fuzzy_score(text: str, label: str) -> int | None:
    """Lower is better; None when the characters of ``text`` do not appear in order in ``label``."""
    if not text:
        return 0
    t, s = text.lower(), label.lower()
    at = s.find(t)
    if at >= 0:
        return at
    pos, gaps = -1, 0
    for ch in t:
        nxt = s.find(ch, pos + 1)
        if nxt < 0:
            return None
        gaps += nxt - pos - 1
        pos = nxt
    return 100 + gaps


class CommandPalette(QDialog):
    def __init__(self, providers: list[Provider], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Go to…")
        self.setModal(True)
        self.providers = providers
        self.resize(560, 380)
        layout = QVBoxLayout(self)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Type a run, experiment, area or action…")
        self.list = QListWidget()
        self.hint = QLabel("Enter: go   Esc: close")
        self.hint.setObjectName("muted")
        layout.addWidget(self.edit)
        layout.addWidget(self.list)
        layout.addWidget(self.hint)
        self.entries: list[PaletteEntry] = []
        self.edit.textChanged.connect(self.update_entries)
        self.edit.returnPressed.connect(self.activate_current)
        self.list.itemActivated.connect(lambda _item: self.activate_current())
        self.edit.installEventFilter(self)
        self.update_entries("")

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.edit and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up, Qt.Key.Key_PageDown, Qt.Key.Key_PageUp):
                self.list.event(event)
                return True
        return super().eventFilter(obj, event)

    def update_entries(self, text: str) -> None:
        found: list[tuple[int, int, PaletteEntry]] = []
        order = 0
        for provider in self.providers:
            try:
                entries = provider(text)
            except Exception:  # noqa: BLE001 - a failing provider must not break the palette
                entries = []
            for entry in entries:
                score = fuzzy_score(text, entry.label)
                if score is None and entry.kind == "run":
                    score = 50  # the provider matched it on its id or another field
                if score is not None:
                    found.append((score, order, entry))
                    order += 1
        found.sort(key=lambda x: (x[0], x[1]))
        self.entries = [e for _s, _o, e in found[:200]]
        self.list.clear()
        for entry in self.entries:
            item = QListWidgetItem(f"{entry.label}" + (f"    — {entry.detail}" if entry.detail else ""))
            item.setData(Qt.ItemDataRole.UserRole, entry.kind)
            self.list.addItem(item)
        if self.entries:
            self.list.setCurrentRow(0)

    def activate_current(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.entries):
            entry = self.entries[row]
            self.accept()
            entry.callback()
