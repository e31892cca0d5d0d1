"""Keyboard shortcuts: the list Help ▸ Keyboard shortcuts shows, and keeping them alive after a dialog closes."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def key_text(sequence: QKeySequence) -> str:
    return sequence.toString(QKeySequence.SequenceFormat.NativeText)


def collect(window: Any) -> list[tuple[str, str, str]]:
    """(where, keys, what) for every shortcut of the window: menu actions, window shortcuts, and what each area
    declares in its ``shortcuts`` class attribute (so areas not opened yet are listed too)."""
    rows: list[tuple[str, str, str]] = []
    seen: set[tuple[str, str]] = set()

    def add(where: str, keys: str, what: str) -> None:
        if keys and (where, keys) not in seen and not (where == "Window" and any(k == keys for _w, k in seen)):
            seen.add((where, keys))
            rows.append((where, keys, what))

    for menu_action in window.menuBar().actions():
        menu = menu_action.menu()
        if menu is None:
            continue
        where = menu_action.text().replace("&", "")
        for action in _menu_actions(menu):
            what = action.whatsThis() or action.text().replace("&", "").rstrip("…").strip()
            for sequence in action.shortcuts():
                add(where, key_text(sequence), what)
    for shortcut in window.findChildren(QShortcut):
        if shortcut.whatsThis():
            add("Window", key_text(shortcut.key()), shortcut.whatsThis())
    for cls in getattr(window, "area_classes", []):
        for keys, what in getattr(cls, "shortcuts", ()):
            add(cls.title, keys, what)
    return rows


def _menu_actions(menu: Any) -> list[QAction]:
    out: list[QAction] = []
    for action in menu.actions():
        sub = action.menu()
        if sub is not None:
            out += _menu_actions(sub)
        elif not action.isSeparator():
            out.append(action)
    return out


class ShortcutsDialog(QDialog):
    """A read-only table of every shortcut, grouped by where it works."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(560, 520)
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Where", "Keys", "Does"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        note = QLabel("Menus show their shortcuts too; Ctrl+K finds any area, run or action by name.")
        note.setObjectName("muted")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def rows(self) -> list[tuple[str, str, str]]:
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text(), self.table.item(r, 2).text())
                for r in range(self.table.rowCount())]


class RefocusAfterDialogs(QObject):
    """Gives the keyboard back to the main window when one of its dialogs closes.

    Without a window manager (Xvfb, some kiosk setups) nobody activates the main window again when a dialog goes,
    so no window is active and every window shortcut (Ctrl+K, Ctrl+1…) is dead until the user clicks. This watches
    the application's focus: when it leaves a widget of one of the main window's dialogs for none, and that dialog
    has closed, the main window is activated again (Qt then puts the focus back on the widget that had it). Focus
    lost to another application is left alone: then the dialog is still open, or the main window had the focus.
    """

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        self.restored = 0
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._focus_changed)

    def _focus_changed(self, old: QWidget | None, now: QWidget | None) -> None:
        if now is not None or old is None:
            return
        try:
            dialog = old.window()
        except RuntimeError:  # the widget is being deleted
            return
        if isinstance(dialog, QDialog) and dialog is not self.window and self._ours(dialog):
            QTimer.singleShot(0, self, lambda d=dialog: self._restore(d))

    def _ours(self, dialog: QDialog) -> bool:
        parent = dialog.parentWidget()
        return parent is not None and parent.window() is self.window

    def _restore(self, dialog: QDialog) -> None:
        try:
            closed = not dialog.isVisible()
        except RuntimeError:  # the dialog is already deleted: it closed
            closed = True
        if closed and QApplication.activeWindow() is None and self.window.isVisible():
            self.restored += 1
            self.window.activateWindow()
