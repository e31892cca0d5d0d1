"""Fixtures shared by every test folder: a fresh workspace per test, and the desktop app context over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_desktop.workspace import Workspace


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
