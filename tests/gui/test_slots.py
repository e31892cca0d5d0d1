"""Every button and menu action of the app shell, Data, Jobs and Hosts areas can be clicked without an error in its
slot; an error that does reach a slot is a notification, not a crash report; a crash that stops the app is one."""

from __future__ import annotations

import argparse
import sys

import pytest
from gui_helpers import wait_idle
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QCheckBox,
    QDialog,
    QFileDialog,
    QInputDialog,
    QMessageBox,
    QPushButton,
    QRadioButton,
)

from mlops_desktop.gui import crash

AREAS = ["data", "jobs", "hosts"]
# Menu actions that leave the test's window or workspace (quit, another workspace) or take a minute (the demo).
SKIP_ACTIONS = {"Quit", "Open workspace…", "Fill with demo data"}


@pytest.fixture
def no_blocking_dialogs(monkeypatch):
    """File pickers and questions answer 'cancel' at once: a click that opens one must not block the test."""
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([], "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: ("", "")))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: ""))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.StandardButton.No))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *a, **k: None))
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("", False)))


def _fill(ws, tmp_path):
    """A dataset, an SSH host (that does not answer) and a finished local job with its run."""
    from mlops_desktop.data.ingest import ingest
    from mlops_desktop.execution import Executor, HostRegistry, JobRequest

    csv = tmp_path / "fares.csv"
    csv.write_text("id,fare\n1,10.5\n2,7\n")
    ingest(ws, [str(csv)], "fares")
    HostRegistry(ws).add("box", hostname="127.0.0.1", port=9, user="nobody")
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=[sys.executable, "-c", "print('done')"], project_dir="", name="quick"))
        ex.start_ready()
        ex.follow([job.id], poll_s=0.05)


def _close_dialogs(qtbot) -> list[str]:
    closed = []
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QDialog) and widget.isVisible():
            closed.append(widget.windowTitle())
            widget.reject()
    return closed


def _buttons(widget) -> list[QAbstractButton]:
    return [b for b in widget.findChildren(QAbstractButton)
            if b.isVisibleTo(widget) and b.isEnabled() and isinstance(b, QPushButton | QCheckBox | QRadioButton)
            and b.parent() is not None and b.objectName() != "qt_scrollarea_viewport"]


def test_every_button_and_action_of_the_areas_is_safe(window, ctx, qtbot, tmp_path, no_blocking_dialogs):
    _fill(ctx.workspace, tmp_path)
    clicked: list[str] = []
    opened: list[str] = []
    with qtbot.captureExceptions() as exceptions:
        for area_id in AREAS:
            window.navigate(area_id)
            view = window.area(area_id)
            for name in ("confirm",):
                if hasattr(view, name):
                    setattr(view, name, lambda *_a: False)
            wait_idle(qtbot, ctx, 20_000)
            tabs = getattr(view, "tabs", None)
            for tab in range(tabs.count() if tabs is not None else 1):
                if tabs is not None:
                    tabs.setCurrentIndex(tab)
                    wait_idle(qtbot, ctx, 20_000)
                for button in _buttons(view):
                    if not (button.isVisible() and button.isEnabled()):
                        continue
                    label = f"{area_id}: {button.text()}"
                    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
                    clicked.append(label)
                    wait_idle(qtbot, ctx, 20_000)
                    opened += [f"{label} -> {t}" for t in _close_dialogs(qtbot)]
                    wait_idle(qtbot, ctx, 20_000)
                    if getattr(view, "live", None) is not None and view.live.isChecked():
                        view.live.setChecked(False)
        for menu_action in window.menuBar().actions():
            for action in menu_action.menu().actions():
                if action.isSeparator() or action.menu() is not None or action.text() in SKIP_ACTIONS:
                    continue
                action.trigger()
                clicked.append(f"menu: {action.text()}")
                wait_idle(qtbot, ctx, 20_000)
                opened += [f"menu {action.text()} -> {t}" for t in _close_dialogs(qtbot)]
    problems = [f"{type(e[1]).__name__}: {e[1]}" for e in exceptions]
    assert not problems, f"errors in slots after clicking {clicked}: {problems}"
    assert "hosts: Add host…" in clicked and "jobs: New job…" in clicked and "data: Ingest…" in clicked
    for dialog in ("hosts: Add host… -> Add SSH host", "jobs: New job… -> New job", "data: Ingest… -> Ingest data",
                   "menu Keyboard shortcuts -> Keyboard shortcuts"):
        assert dialog in opened, f"{dialog} did not open; opened: {opened}"
    assert len(clicked) >= 25, clicked


def test_an_error_in_a_slot_is_a_notification_not_a_crash_report(ctx, ws, qtbot):
    handler = crash.CrashHandler(ws.paths.crash_reports)
    handler.install()
    handler.on_exception = lambda exc: ctx.notifications.exception("Unexpected error", exc)
    button = QPushButton("Broken")
    qtbot.addWidget(button)

    def broken() -> None:
        raise AttributeError("'bool' object has no attribute 'get'")

    button.clicked.connect(broken)
    try:
        button.click()  # PySide hands the slot's exception to sys.excepthook: the handler's hook
    finally:
        handler.uninstall()
    note = ctx.notifications.history[-1]
    assert note.level == "error" and note.title == "Unexpected error"
    assert "a bug" in note.message and "AttributeError" not in note.message  # no Python text for the user
    assert "AttributeError: 'bool' object has no attribute 'get'" in note.details
    assert crash.pending_reports(ws.paths.crash_reports) == []  # the next start does not claim a crash


def test_a_crash_that_stops_the_app_leaves_a_report(qapp, ws, tmp_path, monkeypatch):
    from mlops_desktop.gui import app

    def broken_window(*_a, **_k):
        raise RuntimeError("the window could not be built")

    monkeypatch.setattr(app, "make_window", broken_window)
    with pytest.raises(RuntimeError):
        app.run(argparse.Namespace(home=str(ws.root), screenshot=str(tmp_path / "x.png"), view=None,
                                   size="800x600"))
    reports = crash.pending_reports(ws.paths.crash_reports)
    assert len(reports) == 1 and "the window could not be built" in reports[0].read_text()


def test_a_usage_error_is_no_crash(qapp, ws, tmp_path):
    from mlops_desktop.errors import UsageError
    from mlops_desktop.gui import app

    with pytest.raises(UsageError):
        app.run(argparse.Namespace(home=str(ws.root), screenshot=str(tmp_path / "x.png"), view="nope",
                                   size="800x600"))
    assert crash.pending_reports(ws.paths.crash_reports) == []


def test_the_crash_handler_hands_a_hard_crash_back_when_it_is_uninstalled(tmp_path):
    """A screenshot (or a test) installs and uninstalls the handler; whoever dumped hard crashes before (pytest,
    python -X faulthandler) must do so again afterwards, or a later segfault leaves no trace at all."""
    import faulthandler

    from mlops_desktop.gui import crash

    was = faulthandler.is_enabled()
    try:
        faulthandler.enable()
        handler = crash.CrashHandler(tmp_path / "crash")
        handler.install()
        assert faulthandler.is_enabled() and (tmp_path / "crash" / crash.FAULT_LOG).exists()
        handler.uninstall()
        assert faulthandler.is_enabled()
        faulthandler.disable()
        quiet = crash.CrashHandler(tmp_path / "crash2")
        quiet.install()
        quiet.uninstall()
        assert not faulthandler.is_enabled()  # it was off before: it stays off
    finally:
        if was:
            faulthandler.enable()
