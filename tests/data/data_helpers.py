"""Helpers shared by the data-lake tests (imported by name: tests/data is on sys.path under pytest)."""

from __future__ import annotations

from pathlib import Path

from mlops_desktop.workspace import Workspace


def lake_versions(ws: Workspace) -> list[Path]:
    """Version directories present in the lake (committed or not), excluding staging."""
    lake = ws.paths.lake
    if not lake.is_dir():
        return []
    return [v for d in lake.iterdir() if d.is_dir() and not d.name.startswith(".") for v in d.iterdir()]


def catalog_count(ws: Workspace) -> int:
    return ws.db.query("SELECT count(*) FROM dataset_versions")[0][0]
