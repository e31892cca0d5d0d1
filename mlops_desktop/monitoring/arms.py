"""A/B arms side by side: traffic, errors and latency per arm, and whether one arm is better, with a confidence
interval and a p-value (scipy), or a plain "too few samples to say".

Per arm from the prediction log: requests, rows, latency p50/p95/p99 (ms, exact from the log), the prediction
distribution; from the monitored series: error rate and requests/s over the window. When outcomes are joined by
request id (a lake dataset with `request_id`, optionally `row`, and an outcome column) each arm gets its realized
quality: accuracy for labels (two-proportion z-test, Wald interval of the difference), mean absolute error for
numbers (Welch's t-test and its interval). Without outcomes the arms' predictions are compared (chi-squared on the
label counts; Welch on the mean). Fewer than MIN_SAMPLES per arm (or fewer than 5 successes or failures) is
"too few samples to say".
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.errors import UsageError

if TYPE_CHECKING:
    import polars as pl

    from mlops_desktop.monitoring.targets import MonitoredDeployment
    from mlops_desktop.workspace import Workspace

MIN_SAMPLES = 30
CONFIDENCE = 0.95


@dataclass
class ArmStats:
    arm: str
    version: str
    requests: int = 0
    rows: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    requests_per_s: float | None = None
    prediction_mean: float | None = None
    class_shares: dict[str, float] = field(default_factory=dict)
    outcomes: int = 0
    quality: float | None = None       # accuracy or MAE on the joined outcomes


@dataclass
class Comparison:
    metric: str
    baseline: str
    candidate: str
    baseline_value: float | None
    candidate_value: float | None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    significant: bool = False
    enough: bool = False
    verdict: str = ""


@dataclass
class ArmsReport:
    deployment: str
    window_s: float
    arms: list[ArmStats]
    comparisons: list[Comparison]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"deployment": self.deployment, "window_s": self.window_s, "notes": self.notes,
                "arms": [asdict(a) for a in self.arms], "comparisons": [asdict(c) for c in self.comparisons]}


def _f(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def compare_proportions(name: str, base: str, cand: str, k1: int, n1: int, k2: int, n2: int) -> Comparison:
    """Two-proportion z-test (pooled) and the Wald interval of p2 - p1."""
    from scipy import stats

    c = Comparison(name, base, cand, k1 / n1 if n1 else None, k2 / n2 if n2 else None)
    if min(n1, n2) < MIN_SAMPLES or min(k1, n1 - k1, k2, n2 - k2) < 5:
        c.verdict = (f"too few samples to say: {base} has {n1}, {cand} has {n2} (need {MIN_SAMPLES} per arm with "
                     "at least 5 of each outcome)")
        return c
    p1, p2 = k1 / n1, k2 / n2
    z = stats.norm.ppf(0.5 + CONFIDENCE / 2)
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (k1 + k2) / (n1 + n2)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    c.difference, c.ci_low, c.ci_high = p2 - p1, p2 - p1 - z * se, p2 - p1 + z * se
    c.p_value = float(2 * stats.norm.sf(abs(p2 - p1) / se0)) if se0 > 0 else 1.0
    c.enough = True
    c.significant = c.p_value < 1 - CONFIDENCE
    c.verdict = _verdict(c, higher_is_better=True)
    return c


def compare_means(name: str, base: str, cand: str, a: Any, b: Any, *, higher_is_better: bool) -> Comparison:
    """Welch's t-test and the interval of mean(b) - mean(a)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    c = Comparison(name, base, cand, _f(a.mean()) if len(a) else None, _f(b.mean()) if len(b) else None)
    if min(len(a), len(b)) < MIN_SAMPLES:
        c.verdict = f"too few samples to say: {base} has {len(a)}, {cand} has {len(b)} (need {MIN_SAMPLES} per arm)"
        return c
    res = stats.ttest_ind(b, a, equal_var=False)
    ci = res.confidence_interval(CONFIDENCE)
    c.difference = float(b.mean() - a.mean())
    c.ci_low, c.ci_high = _f(ci.low), _f(ci.high)
    c.p_value = _f(res.pvalue)
    if c.p_value is None:  # both constant: equal, or different beyond doubt
        c.p_value = 1.0 if c.difference == 0 else 0.0
    c.enough = True
    c.significant = c.p_value < 1 - CONFIDENCE
    c.verdict = _verdict(c, higher_is_better=higher_is_better)
    return c


def _verdict(c: Comparison, *, higher_is_better: bool) -> str:
    assert c.difference is not None and c.p_value is not None
    ci = f"difference {c.difference:+.4g}, {CONFIDENCE:.0%} CI {c.ci_low:+.4g} to {c.ci_high:+.4g}, p = {c.p_value:.2g}"
    if not c.significant:
        return f"no significant difference in {c.metric} between {c.candidate} and {c.baseline} ({ci})"
    better = (c.difference > 0) == higher_is_better
    return f"{c.candidate} is {'better' if better else 'worse'} than {c.baseline} on {c.metric} ({ci})"


def _series_mean(ws: Workspace, deployment: str, name: str, arm: str, since: float) -> float | None:
    import numpy as np

    from mlops_desktop.monitoring.series import SeriesStore

    store = SeriesStore(ws.db)
    for info in store.list_series(deployment, name):
        if info.labels.get("arm") == arm and "target" not in info.labels:
            _, vals = store.read(deployment, name, info.labels, since=since)
            vals = vals[np.isfinite(vals)]
            return float(vals.mean()) if len(vals) else None
    return None


def compare_arms(ws: Workspace, deployment: str | MonitoredDeployment, *, window_s: float = 3600.0,
                 now: float | None = None, outcomes: str | None = None, outcome_column: str = "outcome",
                 frame: pl.DataFrame | None = None, outcome_frame: pl.DataFrame | None = None) -> ArmsReport:
    import datetime as dt

    import polars as pl

    from mlops_desktop.monitoring import predictions, targets

    if window_s <= 0:
        raise UsageError("the window must be longer than 0 s", hint="e.g. --window 1h")
    now = time.time() if now is None else now
    since = now - window_s
    dep = targets.resolve(ws, deployment) if isinstance(deployment, str) else deployment
    if frame is None:
        frame = predictions.deployment_window(ws, dep, since=since, until=now)
    else:
        frame = frame.filter(pl.col("ts") >= dt.datetime.fromtimestamp(since, dt.UTC))
    report = ArmsReport(dep.name, window_s, [], [])
    if frame.is_empty():
        report.notes.append(f"no predictions logged in the last {window_s:.0f} s")
    if not frame.is_empty() and "shadow" in frame.columns:
        frame = frame.filter(~pl.col("shadow").fill_null(False))
    if not frame.is_empty():
        arm_col = pl.col("arm").fill_null(pl.col("version").cast(pl.String))
        frame = frame.with_columns(arm_col.alias("arm"))
    if outcomes is not None or outcome_frame is not None:
        if outcome_frame is None:
            from mlops_desktop.data import catalog, lake

            outcome_frame = lake.scan(ws, catalog.resolve(ws.db, outcomes or "")).collect()
        missing = [c for c in ("request_id", outcome_column) if c not in outcome_frame.columns]
        if missing:
            raise UsageError(f"the outcomes {outcomes or ''} have no column {missing[0]!r}",
                             hint=f"they need request_id and {outcome_column!r} (--outcome-column)")
        keys = ["request_id", "row"] if "row" in outcome_frame.columns else ["request_id"]
        if keys == ["request_id"] and not frame.is_empty():
            frame = frame.filter(pl.col("row") == 0)
        joined = outcome_frame.select([*keys, pl.col(outcome_column).alias("_outcome")])
        frame = frame.join(joined, on=keys, how="left") if not frame.is_empty() else frame
    arms_order = list(dep.arms)
    if not frame.is_empty():
        arms_order += [a for a in sorted(frame.get_column("arm").unique().to_list()) if a not in arms_order]
    groups: dict[str, pl.DataFrame] = {}
    for arm in arms_order:
        rows = frame.filter(pl.col("arm") == arm) if not frame.is_empty() else pl.DataFrame()
        groups[arm] = rows
        st = ArmStats(arm, dep.arms.get(arm, "") or (str(rows.get_column("version")[0]) if len(rows) else ""))
        if len(rows):
            st.rows = len(rows)
            st.requests = rows.get_column("request_id").n_unique()
            lat = rows.group_by("request_id").agg(pl.col("latency_ms").first()).get_column("latency_ms")
            st.p50_ms, st.p95_ms, st.p99_ms = (_f(lat.quantile(q, "linear")) for q in (0.5, 0.95, 0.99))
            pred = rows.get_column("prediction")
            if pred.dtype.is_numeric() and pred.n_unique() > 20:
                st.prediction_mean = _f(pred.mean())
            else:
                counts = pred.cast(pl.String).value_counts()
                st.class_shares = {str(k): int(n) / len(pred) for k, n in counts.iter_rows()}
            if "_outcome" in rows.columns:
                st.outcomes = int(rows.get_column("_outcome").is_not_null().sum())
        st.error_rate = _series_mean(ws, dep.name, "error_rate", arm, since)
        st.requests_per_s = _series_mean(ws, dep.name, "requests_per_s", arm, since)
        report.arms.append(st)
    base = dep.stable if dep.stable in groups else (arms_order[0] if arms_order else "")
    for st in report.arms:
        if st.arm == base:
            continue
        report.comparisons += _compare(groups[base], groups[st.arm], base, st.arm, report)
    if len(report.arms) < 2:
        report.notes.append("one arm only: nothing to compare")
    return report


def _compare(a: pl.DataFrame, b: pl.DataFrame, base: str, cand: str, report: ArmsReport) -> list[Comparison]:
    import polars as pl

    out: list[Comparison] = []
    stats = {s.arm: s for s in report.arms}
    if len(a) and len(b) and "_outcome" in a.columns:
        ja, jb = a.filter(pl.col("_outcome").is_not_null()), b.filter(pl.col("_outcome").is_not_null())
        numeric = ja.get_column("prediction").dtype.is_float() if len(ja) else False
        if numeric:
            ea = (ja.get_column("prediction") - ja.get_column("_outcome").cast(pl.Float64)).abs()
            eb = (jb.get_column("prediction") - jb.get_column("_outcome").cast(pl.Float64)).abs()
            stats[base].quality, stats[cand].quality = _f(ea.mean()), _f(eb.mean())
            out.append(compare_means("mean absolute error", base, cand, ea.to_numpy(), eb.to_numpy(),
                                     higher_is_better=False))
        else:
            ka = int((ja.get_column("prediction").cast(pl.String) == ja.get_column("_outcome").cast(pl.String)).sum())
            kb = int((jb.get_column("prediction").cast(pl.String) == jb.get_column("_outcome").cast(pl.String)).sum())
            stats[base].quality = ka / len(ja) if len(ja) else None
            stats[cand].quality = kb / len(jb) if len(jb) else None
            out.append(compare_proportions("accuracy", base, cand, ka, len(ja), kb, len(jb)))
    if not len(a) or not len(b):
        out.append(Comparison("predictions", base, cand, None, None,
                              verdict="too few samples to say: an arm has no logged predictions in the window"))
        return out
    pa_, pb_ = a.get_column("prediction"), b.get_column("prediction")
    if pa_.dtype.is_float() and pa_.n_unique() > 20:
        out.append(compare_means("mean prediction", base, cand, pa_.to_numpy(), pb_.to_numpy(),
                                 higher_is_better=True))
        out[-1].verdict = out[-1].verdict.replace(" is better than", " predicts higher than").replace(
            " is worse than", " predicts lower than")
    else:
        out.append(_label_shift(pa_.cast(pl.String), pb_.cast(pl.String), base, cand))
    return out


def _label_shift(a: Any, b: Any, base: str, cand: str) -> Comparison:
    """Chi-squared test of the two arms' label counts."""
    import numpy as np
    from scipy import stats

    labels = sorted(set(a.unique().to_list()) | set(b.unique().to_list()))
    table = np.array([[int((a == lab).sum()) for lab in labels], [int((b == lab).sum()) for lab in labels]])
    c = Comparison("predicted labels", base, cand, None, None)
    if min(len(a), len(b)) < MIN_SAMPLES:
        c.verdict = f"too few samples to say: {base} has {len(a)}, {cand} has {len(b)} (need {MIN_SAMPLES} per arm)"
        return c
    c.enough = True
    if len(labels) < 2:
        c.p_value, c.verdict = 1.0, "both arms predict one label only"
        return c
    res = stats.chi2_contingency(table)
    c.p_value = float(res.pvalue)
    c.significant = c.p_value < 1 - CONFIDENCE
    c.verdict = (f"{cand} predicts a different label mix than {base} (chi-squared p = {c.p_value:.2g})"
                 if c.significant else f"no significant difference in predicted labels (p = {c.p_value:.2g})")
    return c
