"""Fixtures shared by every test folder: a fresh workspace per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_desktop.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path):
    workspace = Workspace.open(tmp_path / "ws")
    yield workspace
    workspace.close()
