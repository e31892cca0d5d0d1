"""Reading a lake dataset version window by window, lazily: a polars scan of its Parquet parts with a filter on the
time column, so only the row groups a window needs are read and memory stays bounded by a window, not the dataset.

The time column is turned into integers for the window arithmetic: microseconds since the epoch (datetime), days
(date) or the numbers themselves (integer or float columns, floats truncated for the plan only).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.data.catalog import DatasetVersion
    from mlops_desktop.workspace import Workspace

EPOCH = dt.datetime(1970, 1, 1)
NUMERIC = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32", "float64")


@dataclass
class TimeAxis:
    """How the time column maps to integers: `unit_s` seconds per integer step (None: a plain number column)."""

    column: str
    kind: str  # "datetime" | "date" | "number"
    unit_s: float | None
    time_zone: str | None = None

    def to_int_expr(self) -> pl.Expr:
        import polars as pl

        col = pl.col(self.column)
        if self.kind == "datetime":
            return col.dt.epoch("us")
        if self.kind == "date":
            return col.cast(pl.Int32).cast(pl.Int64)
        return col.cast(pl.Int64) if self.kind == "number" else col

    def value(self, v: int | None) -> Any:
        """An integer of the plan as a value of the column (what filters compare with, what reports show)."""
        if v is None:
            return None
        if self.kind == "datetime":
            out = EPOCH + dt.timedelta(microseconds=int(v))
            return out.replace(tzinfo=dt.UTC) if self.time_zone else out
        if self.kind == "date":
            return dt.date(1970, 1, 1) + dt.timedelta(days=int(v))
        return int(v)

    def between(self, start: int | None, end: int | None) -> pl.Expr:
        import polars as pl

        col = pl.col(self.column)
        cond = col.is_not_null()
        if start is not None:
            cond = cond & (col >= pl.lit(self.value(start)))
        if end is not None:
            cond = cond & (col < pl.lit(self.value(end)))
        return cond


def time_axis(version: DatasetVersion, column: str) -> TimeAxis:
    dtype = version.schema.get(column)
    if dtype is None:
        raise UsageError(f"{version.ref} has no column {column!r} (--time-col)",
                         hint="its columns: " + ", ".join(version.schema))
    if dtype.startswith("datetime"):
        zone = dtype[len("datetime["):-1] if dtype.startswith("datetime[") else None
        return TimeAxis(column, "datetime", 1e-6, zone)
    if dtype == "date":
        return TimeAxis(column, "date", 86400.0)
    if dtype in NUMERIC:
        return TimeAxis(column, "number", None)
    raise UsageError(f"{version.ref}: the time column {column!r} is {dtype}, not a date, time or number",
                     hint="back-tests order rows by a datetime, date or numeric column")


class WindowSource:
    """The dataset version's rows, by time range."""

    def __init__(self, ws: Workspace, version: DatasetVersion, axis: TimeAxis) -> None:
        from mlops_desktop.data import lake

        self.version = version
        self.axis = axis
        self.files = [str(p) for p in lake.data_files(ws, version)]
        self._lake = lake
        self._ws = ws

    def scan(self) -> pl.LazyFrame:
        return self._lake.scan(self._ws, self.version)

    def span(self) -> tuple[int, int] | None:
        """(first time, one past the last time) as integers, or None when the column has no values."""
        t = self.axis.to_int_expr()
        row = self.scan().select(t.min().alias("lo"), t.max().alias("hi")).collect()
        lo, hi = row["lo"][0], row["hi"][0]
        if lo is None or hi is None:
            return None
        return int(lo), int(hi) + 1

    def sorted_times(self) -> Any:
        """Every non-null time as integers, ascending (8 bytes a row: what row-count windows need)."""
        t = self.axis.to_int_expr()
        return self.scan().select(t.alias("t")).drop_nulls().sort("t").collect()["t"].to_numpy()

    def read(self, start: int | None, end: int | None, columns: list[str]) -> pl.DataFrame:
        """Rows with start <= time < end (None: unbounded), only `columns`; the filter is pushed into the scan."""
        return self.scan().filter(self.axis.between(start, end)).select(columns).collect()


class FileSource(WindowSource):
    """The same reads over Parquet files given by path (a remote job's copy of a version's parts)."""

    def __init__(self, files: list[str], axis: TimeAxis) -> None:  # noqa: D107 - no workspace here
        self.files = list(files)
        self.axis = axis

    def scan(self) -> pl.LazyFrame:
        import polars as pl

        return pl.scan_parquet(self.files, hive_partitioning=False)


def numpy_columns(frame: pl.DataFrame, names: list[str], cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """Columns as 1-D numpy arrays (integers with nulls become floats with NaN, text becomes objects)."""
    out = {}
    for name in names:
        if cache is not None and name in cache:
            out[name] = cache[name]
            continue
        arr = frame.get_column(name).to_numpy()
        out[name] = arr
        if cache is not None:
            cache[name] = arr
    return out
