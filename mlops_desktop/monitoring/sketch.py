"""A compact per-feature sketch of a reference dataset, built once (at registration), so drift never reloads it.

Numbers keep count, nulls, min/max, mean/std, 1,000 mid-quantiles (an equal-weight summary of the distribution:
Wasserstein distance comes from it), 1,024 equal-width bin counts (exact mass in the tails; with the quantiles they
give the CDF, hence a histogram on any bins) and, when there are few distinct values, the exact
frequency of each. Categories keep the frequency of up to 1,000 values plus an "other" bucket. A reference small
enough for the exact small-sample tests (KS, chi-squared, z) keeps its raw values too, so their verdicts equal those
of the raw data. Columns are read one at a time from a lazy frame, so memory follows one column, not the table.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.progress import Progress

SKETCH_FORMAT = 1
QUANTILES = 1000        # mid-quantiles at (i + 0.5) / QUANTILES
HISTOGRAM_BINS = 1024   # equal-width counts over [min, max]: exact mass in the tails, where quantiles are sparse
RAW_LIMIT = 5000        # references up to this size also keep their raw non-null values
FREQUENCY_LIMIT = 1000  # distinct values kept exactly (numbers with few values, categories' top values)


@dataclass
class ColumnSketch:
    name: str
    kind: str                     # "numeric" | "categorical"
    count: int                    # non-null values
    nulls: int
    n_unique: int                 # exact while <= FREQUENCY_LIMIT, else a lower bound (FREQUENCY_LIMIT + 1)
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None      # population standard deviation (ddof=0), as drift tools use it
    quantiles: list[float] = field(default_factory=list)
    histogram: list[int] = field(default_factory=list)         # HISTOGRAM_BINS counts over [minimum, maximum]
    frequencies: dict[str, int] = field(default_factory=dict)  # value (as text) -> count
    other_count: int = 0          # values outside `frequencies`
    raw: list[Any] | None = None  # every non-null value, for small references

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "count": self.count, "nulls": self.nulls,
                               "n_unique": self.n_unique}
        if self.kind == "numeric":
            out.update(min=self.minimum, max=self.maximum, mean=self.mean, std=self.std, quantiles=self.quantiles,
                       histogram=self.histogram)
        if self.frequencies:
            out["frequencies"] = self.frequencies
        if self.other_count:
            out["other_count"] = self.other_count
        if self.raw is not None:
            out["raw"] = self.raw
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSketch:
        return cls(name=data["name"], kind=data["kind"], count=int(data["count"]), nulls=int(data["nulls"]),
                   n_unique=int(data["n_unique"]), minimum=data.get("min"), maximum=data.get("max"),
                   mean=data.get("mean"), std=data.get("std"), quantiles=list(data.get("quantiles") or []),
                   histogram=[int(c) for c in data.get("histogram") or []],
                   frequencies=dict(data.get("frequencies") or {}), other_count=int(data.get("other_count") or 0),
                   raw=data.get("raw"))


@dataclass
class Sketch:
    rows: int
    columns: dict[str, ColumnSketch]
    source: str = ""              # e.g. "lake:trips@3"

    def to_dict(self) -> dict[str, Any]:
        return {"format": SKETCH_FORMAT, "rows": self.rows, "source": self.source,
                "columns": [c.to_dict() for c in self.columns.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sketch:
        if int(data.get("format", 0)) > SKETCH_FORMAT:
            raise UsageError(f"the reference sketch has format {data.get('format')}; this version reads up to "
                             f"{SKETCH_FORMAT}", hint="upgrade MLOps Desktop")
        try:
            columns = [ColumnSketch.from_dict(c) for c in data["columns"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"malformed reference sketch: {exc}") from None
        return cls(int(data["rows"]), {c.name: c for c in columns}, str(data.get("source", "")))


def numeric_dtype(dtype: Any) -> bool:
    return bool(dtype.is_numeric()) and not str(dtype).startswith("Boolean")


def build_sketch(frame: Any, columns: Iterable[str] | None = None, *, source: str = "",
                 progress: Progress | None = None) -> Sketch:
    """Sketch the given columns (default: all) of a polars LazyFrame or DataFrame, one column at a time."""
    import polars as pl

    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    schema = lf.collect_schema()
    names = list(columns) if columns is not None else list(schema.names())
    missing = [c for c in names if c not in schema]
    if missing:
        raise UsageError(f"the reference data has no column {', '.join(map(repr, missing))}",
                         hint="columns: " + ", ".join(schema.names()[:30]))
    rows = int(lf.select(pl.len()).collect().item())
    sketches: dict[str, ColumnSketch] = {}
    for i, name in enumerate(names):
        if progress is not None:
            progress.update(i / max(len(names), 1), f"sketching {name}")
            progress.check()
        series = lf.select(pl.col(name)).collect().to_series()
        sketches[name] = sketch_series(series, rows)
    if progress is not None:
        progress.update(1.0, "sketch done")
    return Sketch(rows, sketches, source)


def sketch_series(series: Any, rows: int | None = None) -> ColumnSketch:
    """The sketch of one polars Series."""
    import numpy as np
    import polars as pl

    name = series.name
    nulls = int(series.null_count())
    if numeric_dtype(series.dtype):
        values = series.drop_nulls().cast(pl.Float64).to_numpy()
        values = values[np.isfinite(values)]  # NaN/inf are no observations (as drift tools drop them)
        nulls += len(series) - nulls - len(values)
        return _numeric(name, np.sort(values), nulls)
    text = series.drop_nulls().cast(pl.String)
    counts = text.value_counts(sort=True)
    values_col, count_col = counts.columns
    top = counts.head(FREQUENCY_LIMIT)
    frequencies = dict(zip(top[values_col].to_list(), (int(c) for c in top[count_col].to_list()), strict=True))
    total = int(counts[count_col].sum()) if len(counts) else 0
    raw = text.to_list() if total <= RAW_LIMIT else None
    return ColumnSketch(name, "categorical", total, nulls, min(len(counts), FREQUENCY_LIMIT + 1),
                        frequencies=frequencies, other_count=total - sum(frequencies.values()), raw=raw)


def _numeric(name: str, ordered: Any, nulls: int) -> ColumnSketch:
    import numpy as np

    n = len(ordered)
    if n == 0:
        return ColumnSketch(name, "numeric", 0, nulls, 0)
    changes = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1
    n_unique = len(changes) + 1
    frequencies: dict[str, int] = {}
    if n_unique <= FREQUENCY_LIMIT:
        starts = np.concatenate(([0], changes))
        counts = np.diff(np.concatenate((starts, [n])))
        frequencies = {_number_key(ordered[s]): int(c) for s, c in zip(starts, counts, strict=True)}
    probs = (np.arange(QUANTILES) + 0.5) / QUANTILES
    quantiles = np.quantile(ordered, probs, method="linear")
    histogram = np.histogram(ordered, bins=HISTOGRAM_BINS, range=(float(ordered[0]), float(ordered[-1])))[0] \
        if ordered[-1] > ordered[0] else np.array([n])
    mean = float(ordered.mean())
    return ColumnSketch(name, "numeric", n, nulls, min(n_unique, FREQUENCY_LIMIT + 1),
                        minimum=float(ordered[0]), maximum=float(ordered[-1]), mean=mean,
                        std=float(math.sqrt(max(float(np.mean((ordered - mean) ** 2)), 0.0))),
                        quantiles=[float(q) for q in quantiles], histogram=[int(c) for c in histogram],
                        frequencies=frequencies,
                        raw=[float(v) for v in ordered] if n <= RAW_LIMIT else None)


def _number_key(value: float) -> str:
    """Frequency keys of numbers: integral values without '.0', so 1 and 1.0 meet."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
