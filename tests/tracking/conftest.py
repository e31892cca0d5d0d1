"""Fixtures for the tracking tests: the tracking store of the per-test workspace."""

from __future__ import annotations

import pytest


@pytest.fixture
def store(ws):
    return ws.tracking
