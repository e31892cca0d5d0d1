"""Column profiles of a dataset version (nulls, distinct, stats, quantiles, histogram, top values), cached per version."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import catalog, lake
from mlops_desktop.progress import Progress

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.workspace import Workspace

BINS = 20
TOP = 10
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PROFILE_VERSION = 2


def profile(ws: Workspace, ref: str, *, refresh: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """The profile of ``ref`` ("name" = latest); computed once per version and then read from the catalog."""
    progress = progress or Progress()
    version = catalog.resolve(ws.db, ref)
    if not refresh:
        cached = catalog.get_profile(ws.db, version.id)
        if cached is not None and cached.get("profile_version") == PROFILE_VERSION:
            return cached | {"cached": True}
    frame = lake.scan(ws, version)
    schema = frame.collect_schema()
    columns = []
    for index, (name, dtype) in enumerate(schema.items()):
        progress.update(index / max(1, len(schema)), f"profiling {name}")
        columns.append(_column(frame, name, dtype, version.row_count))
    result = {"profile_version": PROFILE_VERSION, "dataset": version.name, "version": version.version,
              "rows": version.row_count, "columns": columns}
    catalog.put_profile(ws.db, version.id, result)
    progress.update(1.0, "profiled")
    return result | {"cached": False}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _column(frame: pl.LazyFrame, name: str, dtype: Any, rows: int) -> dict[str, Any]:
    import polars as pl

    from mlops_desktop.data.contract import dtype_name

    col = pl.col(name)
    numeric = dtype.is_numeric() and dtype != pl.Boolean
    temporal = dtype.is_temporal()
    out: dict[str, Any] = {"name": name, "dtype": dtype_name(dtype)}
    if numeric or temporal:
        aggs = [col.null_count().alias("nulls"), col.n_unique().alias("distinct"), col.min().alias("min"),
                col.max().alias("max")]
        if numeric:
            aggs += [col.mean().alias("mean"), col.std().alias("std")]
        stats = frame.select(aggs).collect(engine="streaming").row(0, named=True)
        out |= {"nulls": stats["nulls"], "distinct": stats["distinct"], "min": _clean(stats["min"]),
                "max": _clean(stats["max"])}
        if numeric:
            out["mean"], out["std"] = _clean(stats["mean"]), _clean(stats["std"])
            out["quantiles"] = _quantiles(frame, name)
            out["histogram"] = _histogram(frame, name, stats["min"], stats["max"])
    else:
        # one grouping gives both the distinct count and the most frequent values
        counts = frame.group_by(col).len().collect(engine="streaming")
        nulls = counts.filter(pl.col(name).is_null())["len"].sum()
        top = counts.sort(["len", name], descending=[True, False], nulls_last=True).head(TOP)
        out |= {"nulls": int(nulls or 0), "distinct": counts.filter(pl.col(name).is_not_null()).height,
                "top": [[_clean(v), n] for v, n in top.rows()]}
    out["null_fraction"] = (out["nulls"] / rows) if rows else 0.0
    return out


def _quantiles(frame: pl.LazyFrame, name: str) -> dict[str, Any]:
    """Linear-interpolated quantiles from one sort (polars would sort once per quantile)."""
    import polars as pl

    values = frame.select(pl.col(name).drop_nulls().sort()).collect(engine="streaming").to_series()
    n = len(values)
    out: dict[str, Any] = {}
    for q in QUANTILES:
        if n == 0:
            out[str(q)] = None
            continue
        pos = q * (n - 1)
        lo = int(math.floor(pos))
        hi = min(lo + 1, n - 1)
        a, b = values[lo], values[hi]
        out[str(q)] = _clean(float(a) + (float(b) - float(a)) * (pos - lo))
    return out


def _histogram(frame: pl.LazyFrame, name: str, lo: Any, hi: Any) -> dict[str, list[Any]]:
    """Equal-width bins between min and max (exact counts, streaming; no sampling)."""
    import polars as pl

    if lo is None or hi is None or not math.isfinite(float(lo)) or not math.isfinite(float(hi)):
        return {"edges": [], "counts": []}
    lo, hi = float(lo), float(hi)
    width = (hi - lo) / BINS if hi > lo else 1.0
    edges = [lo + i * width for i in range(BINS + 1)]
    bins = ((pl.col(name).cast(pl.Float64) - lo) / width).floor().clip(0, BINS - 1).cast(pl.Int32).alias("bin")
    counted = frame.select(bins).drop_nulls().group_by("bin").len().collect(engine="streaming")
    counts = [0] * BINS
    for b, n in counted.rows():
        counts[int(b)] += int(n)
    return {"edges": edges, "counts": counts}
