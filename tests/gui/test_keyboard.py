"""Keyboard: window shortcuts still work after a dialog closes (no window manager gives the focus back), and
Help ▸ Keyboard shortcuts lists them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication


def _active(qtbot, window) -> None:
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)


def test_shortcuts_work_after_a_dialog_closes(window, ctx, qtbot):
    _active(qtbot, window)
    QTest.keySequence(window, QKeySequence("Ctrl+3"))
    assert window.current_area_id() == "jobs"
    QTest.keySequence(window, QKeySequence("Ctrl+K"))
    palette = window.command_palette
    qtbot.waitUntil(lambda: QApplication.activeWindow() is palette, timeout=3000)
    QTest.keyClick(palette.edit, Qt.Key.Key_Escape)  # closes it; nothing activates the main window on its own
    qtbot.waitUntil(lambda: not palette.isVisible(), timeout=3000)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    QTest.keySequence(window, QKeySequence("Ctrl+4"))
    assert window.current_area_id() == "hosts"
    # the same after a dialog of an area, closed with its button
    hosts = window.area("hosts")
    dialog = hosts.open_add_dialog()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is dialog, timeout=3000)
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Cancel), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=3000)
    QTest.keySequence(window, QKeySequence("Ctrl+1"))
    assert window.current_area_id() == "data"


def test_help_lists_the_shortcuts(window, ctx, qtbot):
    _active(qtbot, window)
    QTest.keySequence(window, QKeySequence(QKeySequence.StandardKey.HelpContents))
    qtbot.waitUntil(lambda: getattr(window, "shortcuts_dialog", None) is not None
                    and window.shortcuts_dialog.isVisible(), timeout=3000)
    rows = window.shortcuts_dialog.rows()
    keys = {(keys, what) for _where, keys, what in rows}
    assert ("Ctrl+K", "Go to any area, experiment, run or action (command palette)") in keys
    assert ("Ctrl+3", "Jobs") in keys and ("Ctrl+/", "Keyboard shortcuts") in keys
    assert ("Data", "Ctrl+Enter", "Run the SQL query (in the SQL editor)") in rows  # an area not opened yet
    assert ("Jobs", "Ctrl+N", "New job") in {(w, k, d.rstrip("…")) for w, k, d in rows}
    assert any(k == "F1" for _w, k, _d in rows)
    window.shortcuts_dialog.reject()


def test_ctrl_n_opens_new_job_only_in_jobs(window, ctx, qtbot):
    _active(qtbot, window)
    window.navigate("hosts")
    jobs = window.area("jobs")
    QTest.keySequence(window, QKeySequence("Ctrl+N"))
    qtbot.wait(200)
    assert jobs.new_job_dialog is None  # Jobs is not shown: its shortcut sleeps
    window.navigate("jobs")
    QTest.keySequence(window, QKeySequence("Ctrl+N"))
    qtbot.waitUntil(lambda: jobs.new_job_dialog is not None and jobs.new_job_dialog.isVisible(), timeout=5000)
    jobs.new_job_dialog.reject()
