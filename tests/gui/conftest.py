"""Fixtures for the desktop app tests: offscreen Qt and the main window (ws and ctx come from tests/conftest.py)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture
def window(ctx, qtbot):
    from mlops_desktop.gui.app import make_window

    win = make_window(ctx)
    qtbot.addWidget(win)
    win.resize(1280, 800)
    win.show()
    yield win
    win.close()
