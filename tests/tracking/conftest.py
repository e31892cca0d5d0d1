"""Fixtures for the tracking tests: the tracking store of the per-test workspace."""

from __future__ import annotations

import pytest


@pytest.fixture
def store(ws):
    return ws.tracking


@pytest.fixture(autouse=True)
def _fresh_fluent_state():
    """The fluent API keeps process state (active runs, tracking URI, active experiment): none leaks out of a test."""
    from mlops_desktop.tracking import client, context

    yield
    for run in reversed(list(client._runs)):
        run.end("killed")
    context.state.__init__()
