"""Fixtures for the data-lake tests: a fresh workspace per test and helpers to write input files."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def src(tmp_path: Path):
    """src("name.csv", text_or_bytes) writes an input file and returns its path."""
    folder = tmp_path / "in"
    folder.mkdir()

    def write(name: str, content: str | bytes) -> Path:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write
