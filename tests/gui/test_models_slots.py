"""Every button of every tab of the Models area, clicked over the demo workspace (and each dialog it opens
cancelled): no error reaches a slot, and whatever it started (a local server) is stopped afterwards."""

from __future__ import annotations

import pytest
from gui_helpers import wait_idle
from models_helpers import demo_copy
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QApplication, QCheckBox, QDialog, QPushButton

from mlops_desktop.workspace import Workspace


@pytest.fixture
def ws(tmp_path, request):
    workspace = Workspace.open(demo_copy(request, tmp_path))
    yield workspace
    from mlops_desktop.serving import manager

    for server in manager.list_servers(workspace):
        if server.state in ("running", "starting"):
            manager.stop(workspace, server.name, timeout=20)
    workspace.close()


def _buttons(widget) -> list[QAbstractButton]:
    return [b for b in widget.findChildren(QAbstractButton)
            if b.isVisible() and b.isEnabled() and isinstance(b, QPushButton | QCheckBox)]


def _close_dialogs() -> list[str]:
    closed = []
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QDialog) and widget.isVisible():
            closed.append(widget.windowTitle())
            widget.reject()
    return closed


def test_every_button_of_the_models_area_is_safe(window, ctx, qtbot, ws):
    window.navigate("models")
    view = window.area("models")
    wait_idle(qtbot, ctx, 20_000)
    view.show_item(model="iris-classifier", version=3)
    qtbot.waitUntil(lambda: view.current_version() == 3, timeout=10_000)
    clicked: list[str] = []
    opened: list[str] = []
    with qtbot.captureExceptions() as exceptions:
        for tab in view.tab_ids:
            view.show_item(tab=tab)
            wait_idle(qtbot, ctx, 30_000)
            for button in _buttons(view.tabs.currentWidget()):
                if not (button.isVisible() and button.isEnabled()):
                    continue
                qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
                clicked.append(f"{tab}: {button.text()}")
                wait_idle(qtbot, ctx, 90_000)
                opened += [f"{tab}: {button.text()} -> {t}" for t in _close_dialogs()]
                wait_idle(qtbot, ctx, 30_000)
    problems = [f"{type(e[1]).__name__}: {e[1]}" for e in exceptions]
    assert not problems, f"errors in slots after clicking {clicked}: {problems}"
    assert {"aliases: Promote v3…", "aliases: Roll back…", "aliases: Look up", "serve: Start v3", "try: Send"} \
        <= set(clicked), clicked
    assert "aliases: Promote v3… -> Promote iris-classifier/3" in opened
    assert "aliases: Roll back… -> Roll back iris-classifier" in opened
    errors = [n for n in ctx.notifications.history if n.level == "error"]
    assert not errors, [f"{n.title}: {n.message}" for n in errors]
