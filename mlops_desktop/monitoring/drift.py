"""Drift of a current window against a reference sketch: PSI, Kolmogorov-Smirnov, normed Wasserstein,
Jensen-Shannon, chi-squared and a two-proportion z-test, computed with scipy.

Defaults follow Evidently's data-drift preset, so users moving from it get the same verdicts:
- reference of at most 1,000 rows: numbers with more than 5 distinct values -> KS (drift when p <= 0.05); fewer ->
  chi-squared (p < 0.05), or z-test for two values; categories -> chi-squared, or z-test for two values;
- larger references: numbers with more than 5 distinct values -> normed Wasserstein (drift when >= 0.1); otherwise
  and for categories -> Jensen-Shannon distance (>= 0.1);
- PSI on request (>= 0.1); the dataset drifts when at least half of its features drift.
Both the method and the threshold can be set per feature. Binning is Evidently's: numbers with more than 20 distinct
reference values get Sturges bins over the combined range, others one bucket per value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring.sketch import ColumnSketch, Sketch, _number_key

METHODS = ("ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi")
DEFAULT_THRESHOLDS = {"ks": 0.05, "chisquare": 0.05, "z": 0.05, "wasserstein": 0.1, "jensenshannon": 0.1,
                      "psi": 0.1}
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
SMALL_REFERENCE = 1000
DATASET_DRIFT_SHARE = 0.5


@dataclass
class FeatureDrift:
    column: str
    kind: str
    method: str
    score: float          # a p-value for ks/chisquare/z, a distance otherwise
    threshold: float
    drifted: bool
    reference_count: int
    current_count: int
    note: str = ""

    @property
    def score_is_p_value(self) -> bool:
        return self.method in P_VALUE_METHODS


@dataclass
class DriftReport:
    features: list[FeatureDrift]
    drift_share: float = DATASET_DRIFT_SHARE
    current_rows: int = 0
    reference_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.column for f in self.features if f.drifted]

    @property
    def share_drifted(self) -> float:
        tested = [f for f in self.features if f.current_count > 0]
        return len([f for f in tested if f.drifted]) / len(tested) if tested else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features) and self.share_drifted >= self.drift_share

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_drift": self.dataset_drift, "share_drifted": self.share_drifted,
                "drift_share": self.drift_share, "drifted_features": self.drifted_features,
                "reference_rows": self.reference_rows, "current_rows": self.current_rows, "notes": self.notes,
                "features": [asdict(f) for f in self.features]}


def compute_drift(sketch: Sketch, current: Any, *, columns: list[str] | None = None,
                  methods: Mapping[str, str] | None = None, thresholds: Mapping[str, float] | None = None,
                  drift_share: float = DATASET_DRIFT_SHARE) -> DriftReport:
    """Drift of `current` (a polars/pandas DataFrame or {column: array}) against `sketch`, per feature.

    `methods`/`thresholds` map a column (or "*" for all) to a method of METHODS / a threshold.
    """
    methods = dict(methods or {})
    thresholds = dict(thresholds or {})
    for col, method in methods.items():
        if method not in METHODS:
            raise UsageError(f"unknown drift method {method!r} for {col!r}", hint="use one of " + ", ".join(METHODS))
    frame = _columns(current)
    names = columns if columns is not None else [c for c in sketch.columns if c in frame]
    unknown = [c for c in names if c not in sketch.columns]
    if unknown:
        raise UsageError(f"the reference sketch has no column {', '.join(map(repr, unknown))}",
                         hint="sketched columns: " + ", ".join(list(sketch.columns)[:30]))
    report = DriftReport([], drift_share, reference_rows=sketch.rows,
                         current_rows=len(next(iter(frame.values()))) if frame else 0)
    for name in names:
        ref = sketch.columns[name]
        if name not in frame:
            report.notes.append(f"column {name!r} is missing from the current data")
            continue
        report.features.append(feature_drift(ref, frame[name], methods.get(name, methods.get("*")),
                                             thresholds.get(name, thresholds.get("*"))))
    return report


def _columns(current: Any) -> dict[str, Any]:
    if isinstance(current, Mapping):
        return dict(current)
    if hasattr(current, "get_column"):  # polars
        return {c: current.get_column(c) for c in current.columns}
    if hasattr(current, "columns") and hasattr(current, "__getitem__"):  # pandas
        return {str(c): current[c] for c in current.columns}
    raise UsageError("the current data must be a DataFrame or a mapping of columns")


def feature_drift(ref: ColumnSketch, values: Any, method: str | None = None,
                  threshold: float | None = None) -> FeatureDrift:

    counts: dict[str, int] | None = None
    if ref.kind == "numeric":
        cur = _numeric_values(ref.name, values)
        n_cur = len(cur)
    else:
        cur, counts = None, _text_counts(values)
        n_cur = sum(counts.values())
    if ref.count == 0 or n_cur == 0:
        side = "reference" if ref.count == 0 else "current window"
        return FeatureDrift(ref.name, ref.kind, method or "-", math.nan, math.nan, False, ref.count, n_cur,
                            note=f"no values in the {side}")
    counted = _Counted(ref, cur, counts)
    chosen = method or default_method(ref, counted)
    limit = DEFAULT_THRESHOLDS[chosen] if threshold is None else float(threshold)
    if ref.kind == "categorical" and chosen in ("ks", "wasserstein"):
        raise UsageError(f"drift method {chosen!r} needs numbers; column {ref.name!r} holds categories",
                         hint="use chisquare, z, jensenshannon or psi")
    if chosen == "ks":
        score = _ks(ref, cur)
    elif chosen == "wasserstein":
        score = _wasserstein(ref, cur)
    elif chosen in ("jensenshannon", "psi"):
        ref_pct, cur_pct = binned(ref, cur, counted, fill_zeroes=chosen == "psi")
        score = _js(ref_pct, cur_pct) if chosen == "jensenshannon" else _psi(ref_pct, cur_pct)
    elif chosen == "chisquare":
        score = _chisquare(counted.keyed())
    else:
        score = _z(counted.keyed())
    if chosen == "ks":
        drifted = score <= limit
    elif chosen in P_VALUE_METHODS:
        drifted = score < limit
    else:
        drifted = score >= limit
    return FeatureDrift(ref.name, ref.kind, chosen, float(score), limit, bool(drifted), ref.count, n_cur)


def default_method(ref: ColumnSketch, counted: _Counted) -> str:
    n_values = counted.distinct_combined()
    if ref.count <= SMALL_REFERENCE:
        if ref.kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if ref.kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


class _Counted:
    """The current values counted per distinct value (computed once, only when a method needs it)."""

    def __init__(self, ref: ColumnSketch, cur: Any, counts: dict[str, int] | None = None) -> None:
        self.ref = ref
        self.cur = cur
        self._counts = counts

    def counts(self) -> dict[str, int]:
        if self._counts is None:
            import numpy as np

            values, counts = np.unique(self.cur, return_counts=True)
            keys = [_number_key(v) for v in values] if self.ref.kind == "numeric" else [str(v) for v in values]
            self._counts = {}
            for key, count in zip(keys, counts.tolist(), strict=True):
                self._counts[key] = self._counts.get(key, 0) + int(count)
        return self._counts

    def distinct_combined(self) -> int:
        if self.ref.n_unique > 5:
            return self.ref.n_unique
        return len(set(self.ref.frequencies) | set(self.counts()))

    def keyed(self) -> tuple[list[str], Any, Any]:
        """Union of reference and current values with their counts; values beyond the reference's kept top go to
        the reference's 'other' bucket on both sides."""
        import numpy as np

        ref = self.ref
        current = dict(self.counts())
        if ref.frequencies:
            reference = dict(ref.frequencies)
        else:  # many distinct numbers: only their raw values (small references) can be counted
            raw = np.asarray(ref.raw or [])
            values, counts = np.unique(raw, return_counts=True)
            reference = {_number_key(v) if ref.kind == "numeric" else str(v): int(c)
                         for v, c in zip(values, counts, strict=True)}
        other_ref, other_cur = ref.other_count, 0
        if other_ref:
            for key in [k for k in current if k not in reference]:
                other_cur += current.pop(key)
        keys = sorted(set(reference) | set(current))
        ref_counts = np.array([reference.get(k, 0) for k in keys] + ([other_ref] if other_ref else []), dtype=float)
        cur_counts = np.array([current.get(k, 0) for k in keys] + ([other_cur] if other_ref else []), dtype=float)
        return keys + (["(other)"] if other_ref else []), ref_counts, cur_counts


def _numeric_values(name: str, values: Any) -> Any:
    import numpy as np

    try:
        arr = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"column {name!r} holds numbers in the reference but not in the current data") from None
    return arr[np.isfinite(arr)]


def _text_counts(values: Any) -> dict[str, int]:
    """Category -> count of a window's column, nulls left out; booleans spelled as the sketch spells them."""
    if hasattr(values, "value_counts") and hasattr(values, "drop_nulls"):  # polars: counted without Python objects
        import polars as pl

        counted = values.drop_nulls().cast(pl.String).value_counts()
        keys, counts = counted.columns
        return dict(zip(counted[keys].to_list(), (int(c) for c in counted[counts].to_list()), strict=True))
    out: dict[str, int] = {}
    seq = values.tolist() if hasattr(values, "tolist") else list(values)
    for v in seq:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        key = str(v).lower() if isinstance(v, bool) else str(v)
        out[key] = out.get(key, 0) + 1
    return out


def _ks(ref: ColumnSketch, cur: Any) -> float:
    import numpy as np
    from scipy import stats

    if ref.raw is not None:
        return float(stats.ks_2samp(np.asarray(ref.raw, dtype=np.float64), cur).pvalue)
    # a large reference: D from the sketch's CDF against the current ECDF, the asymptotic p-value ks_2samp uses
    cur_sorted = np.sort(cur)
    points = np.concatenate((cur_sorted, np.asarray(ref.quantiles)))
    f_ref = ref_cdf(ref, points)
    f_cur_right = np.searchsorted(cur_sorted, points, side="right") / len(cur_sorted)
    f_cur_left = np.searchsorted(cur_sorted, points, side="left") / len(cur_sorted)
    d = float(max(np.max(np.abs(f_ref - f_cur_right)), np.max(np.abs(f_ref - f_cur_left))))
    en = ref.count * len(cur) / (ref.count + len(cur))
    return float(stats.kstwo.sf(d, round(en)))


def ref_cdf(ref: ColumnSketch, x: Any) -> Any:
    """The reference CDF at x: piecewise linear through the knots of the mid-quantiles (dense where the data is) and
    of the equal-width histogram (exact cumulative counts, also in sparse tails), merged in order."""
    import numpy as np

    lo, hi = float(ref.minimum or 0.0), float(ref.maximum or 0.0)
    q = np.asarray(ref.quantiles, dtype=np.float64)
    k = len(q)
    xs = [np.array([lo]), q]
    ps = [np.array([0.0]), (np.arange(k) + 0.5) / k]
    if len(ref.histogram) > 1:
        counts = np.asarray(ref.histogram, dtype=np.float64)
        xs.append(np.linspace(lo, hi, len(counts) + 1)[1:])
        ps.append(np.cumsum(counts) / counts.sum())
    xs.append(np.array([hi]))
    ps.append(np.array([1.0]))
    knots, probs = np.concatenate(xs), np.concatenate(ps)
    order = np.lexsort((probs, knots))
    knots, probs = knots[order], np.maximum.accumulate(probs[order])
    return np.interp(x, knots, probs, left=0.0, right=1.0)


def _wasserstein(ref: ColumnSketch, cur: Any) -> float:
    import numpy as np
    from scipy import stats

    norm = max(float(ref.std or 0.0), 0.001)
    reference = np.asarray(ref.raw if ref.raw is not None else ref.quantiles, dtype=np.float64)
    return float(stats.wasserstein_distance(reference, cur) / norm)


def binned(ref: ColumnSketch, cur: Any, counted: _Counted, *, fill_zeroes: bool) -> tuple[Any, Any]:
    """Reference and current shares per bucket, as Evidently's get_binned_data computes them."""
    import numpy as np

    if ref.kind == "numeric" and ref.n_unique > 20:
        lo, hi = min(ref.minimum or 0.0, float(cur.min())), max(ref.maximum or 0.0, float(cur.max()))
        edges = sturges_edges(lo, hi, ref.count + len(cur))
        if ref.raw is not None:
            ref_pct = np.histogram(np.asarray(ref.raw), edges)[0] / ref.count
        else:
            cdf = ref_cdf(ref, edges)
            cdf[-1] = 1.0  # np.histogram's last bin is closed
            ref_pct = np.diff(cdf)
        cur_pct = np.histogram(cur, edges)[0] / len(cur)
    else:
        _keys, ref_counts, cur_counts = counted.keyed()
        ref_pct, cur_pct = ref_counts / ref.count, cur_counts / cur_counts.sum()
    if fill_zeroes:
        ref_pct, cur_pct = _fill_zeroes(ref_pct), _fill_zeroes(cur_pct)
    return ref_pct, cur_pct


def sturges_edges(lo: float, hi: float, n: int) -> Any:
    """np.histogram_bin_edges(combined, bins="sturges") from the combined range and size alone."""
    import numpy as np

    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = int(np.ceil((hi - lo) / ((hi - lo) / (np.log2(n) + 1.0))))
    return np.linspace(lo, hi, max(bins, 1) + 1)


def _fill_zeroes(pct: Any) -> Any:
    import numpy as np

    pct = np.array(pct, dtype=np.float64)
    nonzero = pct[pct != 0]
    if len(nonzero) and len(nonzero) < len(pct):
        smallest = float(nonzero.min())
        np.place(pct, pct == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return pct


def _js(ref_pct: Any, cur_pct: Any) -> float:
    from scipy.spatial import distance

    return float(distance.jensenshannon(ref_pct, cur_pct))


def _psi(ref_pct: Any, cur_pct: Any) -> float:
    import numpy as np

    return float(np.sum((ref_pct - cur_pct) * np.log(ref_pct / cur_pct)))


def _chisquare(keyed: tuple[list[str], Any, Any]) -> float:
    import numpy as np
    from scipy import stats

    _keys, ref_counts, cur_counts = keyed
    expected = ref_counts * (cur_counts.sum() / ref_counts.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.any((expected == 0) & (cur_counts > 0)):
            return 0.0  # a value the reference never had: infinitely unlikely under it
        keep = expected > 0
        return float(stats.chisquare(cur_counts[keep], expected[keep]).pvalue)


def _z(keyed: tuple[list[str], Any, Any]) -> float:
    """Two-proportion z-test on the share of the first (sorted) value, as Evidently's z_stat_test."""
    from scipy import stats

    keys, ref_counts, cur_counts = keyed
    if len(keys) == 1:
        return 1.0
    n1, n2 = ref_counts.sum(), cur_counts.sum()
    p1, p2 = 1 - ref_counts[0] / n1, 1 - cur_counts[0] / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    denom = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if denom == 0:
        return 1.0
    z = (p1 - p2) / denom
    return float(2 * stats.norm.sf(abs(z)))
