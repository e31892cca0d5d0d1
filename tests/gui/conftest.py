"""Fixtures for the desktop app tests: offscreen Qt, a fresh workspace per test, the app context, the main window."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def ctx(qapp, ws):
    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context

    theme.apply(qapp, "light")
    context = make_context(ws)
    yield context
    assert context.tasks.shutdown(5000), "background tasks did not stop"
    if context.workspace is not ws:  # the test switched workspaces
        context.workspace.close()


@pytest.fixture
def window(ctx, qtbot):
    from mlops_desktop.gui.app import make_window

    win = make_window(ctx)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()
