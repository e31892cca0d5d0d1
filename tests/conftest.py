"""Fixtures shared by every test folder: a fresh workspace per test, and the desktop app context over it."""

from __future__ import annotations

import faulthandler
import os
from pathlib import Path

import pytest

from mlops_desktop.workspace import Workspace

_REAL_STDERR: list[int] = []


def pytest_configure(config: pytest.Config) -> None:
    # Output capture is not running yet: this is the terminal's (or CI log's) stderr.
    _REAL_STDERR.append(os.dup(2))


@pytest.fixture(autouse=True)
def _hard_crashes_reach_the_log():
    """A segfault anywhere in the suite prints every thread's stack to the real stderr. Anything that points
    faulthandler elsewhere (the app's crash handler in a screenshot test hands it back to fd 2, which pytest captures
    during a test) would leave a crash of a later test without a trace: CI saw exactly that."""
    if _REAL_STDERR:
        faulthandler.enable(file=_REAL_STDERR[0], all_threads=True)
    yield


@pytest.fixture(autouse=True)
def _qt_garbage_on_the_gui_thread(request):
    """After a test with Qt, its garbage (widgets in reference cycles among it) is collected here, on the GUI
    thread, and collection is the interpreter's again: a later test's worker thread must never be the one that
    collects a widget (a segfault; mlops_desktop/gui/collector.py)."""
    yield
    if "qapp" in request.fixturenames:
        import gc

        from mlops_desktop.gui import collector

        if not collector.uninstall():   # it collects when it was running
            gc.collect()
        # What survives is kept out of later collections: each test's teardown then scans only what the test made
        # (a full collection of the whole suite's heap after every Qt test took seconds), and a frozen cycle that
        # holds a widget is never collected at all, on any thread.
        gc.freeze()
        gc.enable()


@pytest.fixture
def ws(tmp_path: Path):
    workspace = Workspace.open(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture
def ctx(qapp, ws):
    """The desktop app's context over the test's workspace (offscreen Qt, light theme); Qt is imported only here."""
    from mlops_desktop.gui import theme
    from mlops_desktop.gui.app import make_context

    theme.apply(qapp, "light")
    context = make_context(ws)
    yield context
    assert context.tasks.shutdown(10000), "background tasks did not stop"
    if context.workspace is not ws:  # the test switched workspaces
        context.workspace.close()


# The real engines (Docker, registry, Swarm, Kubernetes, Prometheus): fixtures, markers, CI's no-skip rule.
pytest_plugins = ["engines.plugin", "pytester"]
