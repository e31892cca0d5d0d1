"""Data lake and pipelines: ingest files into immutable Parquet versions, check contracts, query, profile, transform.

The public surface is re-exported lazily so that importing this package stays cheap (polars loads on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ingest", "open_dataset", "query", "profile", "run_pipelines", "list_datasets", "resolve"]


def __getattr__(name: str) -> Any:
    if name == "ingest":
        from mlops_desktop.data.ingest import ingest

        return ingest
    if name == "open_dataset":
        from mlops_desktop.data.lake import open_dataset

        return open_dataset
    if name == "query":
        from mlops_desktop.data.query import query

        return query
    if name == "profile":
        from mlops_desktop.data.profile import profile

        return profile
    if name == "run_pipelines":
        from mlops_desktop.data.pipeline import run_pipelines

        return run_pipelines
    if name in ("list_datasets", "resolve"):
        from mlops_desktop.data import catalog

        return getattr(catalog, name)
    raise AttributeError(name)
