"""Per-window metrics and their aggregate equal scikit-learn's on the same rows (binary, multi-class, ties,
string labels, regression), and pooling windows equals scoring their rows at once."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_desktop.backtest.metrics import aggregate, classification_stats, regression_stats, window_metrics


def _binary(n, seed, labels=("no", "yes")):
    rng = np.random.default_rng(seed)
    y = rng.choice(labels, n)
    p1 = np.clip(np.where(y == labels[1], 0.65, 0.35) + rng.normal(0, 0.2, n), 0, 1).round(2)  # ties on purpose
    proba = np.column_stack([1 - p1, p1])
    pred = np.asarray(labels)[(p1 > 0.5).astype(int)]
    return y, pred, proba


def test_binary_metrics_equal_sklearn():
    y, pred, proba = _binary(5000, 1)
    got = window_metrics(classification_stats(y, pred, proba, np.array(["no", "yes"])))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="yes"), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-12)


def test_multiclass_metrics_equal_sklearn_and_unseen_label():
    rng = np.random.default_rng(2)
    classes = np.array([0, 1, 2])
    y = rng.integers(0, 3, 3000)
    proba = rng.dirichlet([1, 1, 1], 3000)
    proba[np.arange(3000), y] += 0.3
    proba /= proba.sum(axis=1, keepdims=True)
    pred = classes[proba.argmax(axis=1)]
    got = window_metrics(classification_stats(y, pred, proba, classes))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"), abs=1e-12)
    y2 = y.copy()
    y2[:10] = 7  # a label the model never saw counts against it, as in sklearn
    got2 = window_metrics(classification_stats(y2, pred, None, classes))
    assert got2["f1"] == pytest.approx(skm.f1_score(y2, pred, average="macro"), abs=1e-12)
    assert "roc_auc" not in got2


def test_auc_absent_when_one_class_only():
    y = np.array(["yes"] * 10)
    stats = classification_stats(y, y, np.tile([0.2, 0.8], (10, 1)), np.array(["no", "yes"]))
    assert "roc_auc" not in window_metrics(stats) and window_metrics(stats)["accuracy"] == 1.0


def test_regression_metrics_equal_sklearn():
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, 4000)
    pred = y + rng.normal(0.5, 1, 4000)
    got = window_metrics(regression_stats(y, pred))
    assert got["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y, pred)), rel=1e-12)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), rel=1e-12)
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred), rel=1e-9)


def test_aggregate_pools_rows_exactly():
    y, pred, proba = _binary(6000, 4)
    classes = np.array(["no", "yes"])
    cuts = [0, 1000, 3500, 6000]
    parts = [classification_stats(y[a:b], pred[a:b], proba[a:b], classes) for a, b in zip(cuts, cuts[1:], strict=False)]
    agg = aggregate(parts)
    assert agg["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert agg["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="yes"), abs=1e-12)
    aucs = [skm.roc_auc_score(y[a:b], proba[a:b, 1]) for a, b in zip(cuts, cuts[1:], strict=False)]
    assert agg["roc_auc"] == pytest.approx(np.average(aucs, weights=np.diff(cuts)), abs=1e-12)
    rng = np.random.default_rng(5)
    t = rng.normal(0, 2, 6000)
    p = t + rng.normal(0, 1, 6000)
    ragg = aggregate([regression_stats(t[a:b], p[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)])
    assert ragg["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(t, p)), rel=1e-12)
    assert ragg["r2"] == pytest.approx(skm.r2_score(t, p), rel=1e-9)
    # windows whose label sets differ still pool
    mixed = aggregate([classification_stats(np.array([0, 1]), np.array([0, 1]), None, np.array([0, 1, 2])),
                       classification_stats(np.array([2, 9]), np.array([2, 2]), None, np.array([0, 1, 2]))])
    yy, pp = np.array([0, 1, 2, 9]), np.array([0, 1, 2, 2])
    assert mixed["f1"] == pytest.approx(skm.f1_score(yy, pp, average="macro"), abs=1e-12)
    assert aggregate([]) == {}
