"""A/B arms: per-arm traffic and exact latency quantiles from the prediction log, outcomes joined by request id,
accuracy and MAE compared with scipy's tests and intervals, and "too few samples to say" when that is the truth."""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import polars as pl
import pytest
from scipy import stats

from mlops_desktop.monitoring.arms import compare_arms, compare_means, compare_proportions
from mlops_desktop.monitoring.targets import MonitoredDeployment

RNG = np.random.default_rng(11)
DEP = MonitoredDeployment("ab", "router", [], model="m", stable="v1", arms={"v1": "1", "v2": "2"})


def _log(n_a: int, n_b: int, *, acc_a: float, acc_b: float, now: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    rows, outcomes = [], []
    for arm, version, n, acc in (("v1", "1", n_a, acc_a), ("v2", "2", n_b, acc_b)):
        for i in range(n):
            truth = int(RNG.integers(0, 2))
            pred = truth if RNG.random() < acc else 1 - truth
            rid = f"{arm}-{i}"
            rows.append({"request_id": rid, "ts": dt.datetime.fromtimestamp(now - 10, dt.UTC),
                         "latency_ms": float(i % 100) + (5.0 if arm == "v2" else 0.0), "model": "m",
                         "version": version, "arm": arm, "row": 0, "shadow": False, "prediction": pred})
            outcomes.append({"request_id": rid, "outcome": truth})
    return pl.DataFrame(rows), pl.DataFrame(outcomes)


def test_proportions_match_a_hand_computed_z_test():
    c = compare_proportions("accuracy", "a", "b", 850, 1000, 900, 1000)
    pooled = 1750 / 2000
    z = 0.05 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert c.p_value == pytest.approx(2 * stats.norm.sf(z)) and c.significant and c.enough
    se = math.sqrt(0.85 * 0.15 / 1000 + 0.9 * 0.1 / 1000)
    assert c.ci_low == pytest.approx(0.05 - 1.959964 * se, rel=1e-4) and c.ci_high > 0.05
    assert c.verdict.startswith("b is better than a on accuracy")
    few = compare_proportions("accuracy", "a", "b", 9, 10, 5, 12)
    assert not few.enough and few.p_value is None and few.verdict.startswith("too few samples to say")


def test_means_match_scipy_welch():
    a, b = RNG.normal(1.0, 1, 400), RNG.normal(1.6, 2, 300)
    c = compare_means("mean absolute error", "a", "b", a, b, higher_is_better=False)
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert c.p_value == pytest.approx(ref.pvalue) and c.ci_low == pytest.approx(ref.confidence_interval().low)
    assert c.verdict.startswith("b is worse than a")
    assert not compare_means("x", "a", "b", a[:10], b, higher_is_better=True).enough


def test_arms_with_joined_outcomes(ws):
    now = time.time()
    frame, outcomes = _log(2000, 2000, acc_a=0.80, acc_b=0.90, now=now)
    rep = compare_arms(ws, DEP, frame=frame, outcome_frame=outcomes, now=now)
    a, b = rep.arms
    assert (a.arm, a.requests, b.arm, b.requests) == ("v1", 2000, "v2", 2000)
    assert a.p50_ms == pytest.approx(np.quantile(frame.filter(pl.col("arm") == "v1")["latency_ms"].to_numpy(), 0.5))
    assert b.p99_ms > a.p99_ms
    assert a.outcomes == 2000 and 0.77 < a.quality < 0.83 and 0.87 < b.quality < 0.93
    [acc, labels] = rep.comparisons
    assert acc.metric == "accuracy" and acc.significant and acc.difference > 0 and "v2 is better" in acc.verdict
    assert labels.metric == "predicted labels" and labels.enough


def test_no_difference_and_too_few_outcomes(ws):
    now = time.time()
    frame, outcomes = _log(3000, 3000, acc_a=0.85, acc_b=0.85, now=now)
    rep = compare_arms(ws, DEP, frame=frame, outcome_frame=outcomes, now=now)
    c = rep.comparisons[0]
    assert c.enough and abs(c.difference) < 0.03 and c.ci_low < 0 < c.ci_high or not c.significant
    small, small_out = _log(20, 500, acc_a=0.5, acc_b=0.99, now=now)
    rep = compare_arms(ws, DEP, frame=small, outcome_frame=small_out, now=now)
    assert all(c.verdict.startswith("too few samples to say") for c in rep.comparisons)
    empty = compare_arms(ws, DEP, frame=small.head(0), now=now)
    assert "no predictions" in empty.notes[0] and empty.comparisons[0].verdict.startswith("too few samples")
