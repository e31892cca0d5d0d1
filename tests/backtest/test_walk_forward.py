"""Walk-forward retraining: refits every k windows on rows strictly before each train window's end (a 1-nearest-
neighbour model on the time itself predicts the newest row it was trained on, so any future row in a fit changes
the error), sliding and expanding windows, side by side with registered versions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_desktop.backtest.api import BacktestSpec, run_backtest
from mlops_desktop.backtest.refit import parse_recipe
from mlops_desktop.errors import UsageError
from tests.backtest.conftest import ingest_frame

KNN = "sklearn.neighbors.KNeighborsRegressor:n_neighbors=1"


@pytest.fixture
def clock(ws, tmp_path):
    n = 1000
    frame = pd.DataFrame({"t": np.arange(n, dtype=np.int64), "f": np.arange(n, dtype=np.float64)})
    frame["y"] = frame.f.copy()
    frame = frame.sample(frac=1.0, random_state=0)  # stored out of time order: the reader must filter, not slice
    ingest_frame(ws, tmp_path, frame, "clock")
    return frame


def _expected_mae(test_start, test_end, newest_train_row):
    t = np.arange(test_start, test_end, dtype=np.float64)
    return float(np.mean(t - newest_train_row))


@pytest.mark.parametrize("train_window,gap", [(None, None), ("200", "50")])
def test_refits_use_only_rows_before_the_train_end(ws, clock, train_window, gap):
    spec = BacktestSpec("clock", "t", [], test_window="100", stride="100", train_window=train_window, gap=gap,
                        refit_every=2, recipe=KNN, target="y", initial_train="300")
    result = run_backtest(ws, spec)
    assert result.labels == ["refit"] and result.task == "regression"
    g = int(gap or 0)
    first = 300 + g
    assert [w.test_start for w in result.windows] == list(range(first, 1000, 100))
    newest = None
    for w in result.windows:
        assert w.train_end == w.test_start - g
        if w.index % 2 == 0:  # refit every 2 windows
            newest = w.train_end - 1
            expected_rows = w.train_end - (w.train_start or 0)
            assert w.train_rows == expected_rows
        end = min(w.test_end, 1000)
        assert w.metrics["refit"]["mae"] == pytest.approx(_expected_mae(w.test_start, end, newest), abs=1e-9), \
            f"window {w.index} was scored by a model that saw rows at or after its train end"
        if train_window:
            assert w.train_start == max(0, w.train_end - 200)


def test_every_window_refit_and_versions_side_by_side(bws, sales):
    spec = BacktestSpec("customers", "ts", ["churn/1"], test_window="7d", stride="7d", refit_every=1,
                        recipe="sklearn.linear_model.LogisticRegression:max_iter=300")
    result = run_backtest(bws, spec)
    assert result.labels == ["churn/1", "refit"]
    # the first window (7 days of initial training) has a model; the refit is fitted on ever more rows
    rows = [w.train_rows for w in result.windows]
    assert rows == sorted(rows) and rows[0] > 0
    for w in result.windows:
        assert set(w.metrics) == {"churn/1", "refit"}
        assert 0.5 < w.metrics["refit"]["accuracy"] <= 1.0
    assert set(result.aggregate) == {"churn/1", "refit"}


@pytest.mark.parametrize("text,needle", [
    ("sklearn.neighbors.NoSuchThing", "cannot import"),
    ("os.system", "not a scikit-learn estimator"),
    ("sklearn.linear_model.Ridge:alpha", "not key=value"),
    ("sklearn.linear_model.Ridge:bogus=1", "has no parameter bogus"),
    ("sklearn:alpha=1", "needs estimator=CLASS"),
])
def test_bad_recipes_refused(ws, clock, text, needle):
    with pytest.raises(UsageError, match=needle):
        run_backtest(ws, BacktestSpec("clock", "t", [], "100", "100", recipe=text, target="y"))


def test_recipe_task_must_match(bws, sales):
    with pytest.raises(UsageError, match="do not share a task: churn/1 classification, --recipe sklearn.linear_model.Ridge regression"):
        run_backtest(bws, BacktestSpec("customers", "ts", ["churn/1"], "7d", "7d", recipe="sklearn.linear_model.Ridge"))


def test_recipe_text():
    assert parse_recipe("sklearn.ensemble.RandomForestRegressor:n_estimators=50,max_depth=8,bootstrap=false") == (
        "sklearn.ensemble.RandomForestRegressor", {"n_estimators": 50, "max_depth": 8, "bootstrap": False})
    assert parse_recipe("sklearn:estimator=sklearn.linear_model.Ridge,alpha=0.5") == (
        "sklearn.linear_model.Ridge", {"alpha": 0.5})
