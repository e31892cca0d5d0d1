"""Data lake and pipelines: ingest files into immutable Parquet versions, check contracts, query, profile, transform.

The public surface is re-exported lazily so that importing this package stays cheap (polars loads on first use).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ingest_files", "open_dataset", "run_query", "profile_dataset", "run_pipelines", "list_datasets", "resolve"]
# (function names differ from the submodule names ingest/query/profile, which Python binds on the package)


def __getattr__(name: str) -> Any:
    if name == "ingest_files":
        from mlops_desktop.data.ingest import ingest

        return ingest
    if name == "open_dataset":
        from mlops_desktop.data.lake import open_dataset

        return open_dataset
    if name == "run_query":
        from mlops_desktop.data.query import query

        return query
    if name == "profile_dataset":
        from mlops_desktop.data.profile import profile

        return profile
    if name == "run_pipelines":
        from mlops_desktop.data.pipeline import run_pipelines

        return run_pipelines
    if name in ("list_datasets", "resolve"):
        from mlops_desktop.data import catalog

        return getattr(catalog, name)
    raise AttributeError(name)
