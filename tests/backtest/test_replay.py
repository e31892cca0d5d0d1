"""Replay of registered versions over a lake dataset: windows read by time, metrics equal scikit-learn's on the same
rows, aggregates, everything stored as runs (a parent with series, a child per window), failures in words."""

from __future__ import annotations

import datetime as dt
import math
import threading

import numpy as np
import pytest
from sklearn import metrics as skm

from mlops_desktop.backtest.api import BacktestSpec, list_backtests, load_backtest, run_backtest
from mlops_desktop.errors import Cancelled, NotFoundError, UsageError
from mlops_desktop.progress import Progress


def _rows(frame, w):
    return frame[(frame.ts >= w.test_start) & (frame.ts < w.test_end)]


def test_weekly_replay_matches_sklearn_per_window(bws, sales, two_versions):
    seen: list[tuple[float, str]] = []
    spec = BacktestSpec("customers", "ts", "churn/1,churn/2", test_window="7d", stride="7d")
    result = run_backtest(bws, spec, progress=lambda f, m: seen.append((f, m)))
    assert result.status == "finished" and result.task == "classification" and result.target == "churned"
    assert result.labels == ["churn/1", "churn/2"] and seen[-1][0] == 1.0
    first = sales.ts.min().to_pydatetime()
    assert len(result.windows) == 6
    assert result.windows[0].test_start == first and result.windows[0].train_start is None
    assert result.windows[1].test_start == first + dt.timedelta(days=7)
    assert result.windows[1].train_start == first and result.windows[1].train_end == first + dt.timedelta(days=7)
    assert sum(w.rows for w in result.windows) == len(sales)
    for w in result.windows:
        rows = _rows(sales, w)
        assert w.rows == len(rows)
        x, y = rows.drop(columns=["ts", "churned"]), rows.churned.to_numpy()
        for label, model in zip(["churn/1", "churn/2"], two_versions, strict=True):
            pred, proba = model.predict(x), model.predict_proba(x)
            got = w.metrics[label]
            assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-9)
            assert got["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="yes"), abs=1e-9)
            assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba[:, 1]), abs=1e-4)  # ONNX float32
    x, y = sales.drop(columns=["ts", "churned"]), sales.churned.to_numpy()
    for label, model in zip(["churn/1", "churn/2"], two_versions, strict=True):
        assert result.aggregate[label]["accuracy"] == pytest.approx(skm.accuracy_score(y, model.predict(x)), abs=1e-9)
        assert result.aggregate[label]["f1"] == pytest.approx(
            skm.f1_score(y, model.predict(x), pos_label="yes"), abs=1e-9)


def test_stored_as_parent_and_child_runs_with_series(bws, sales, two_versions):
    result = run_backtest(bws, BacktestSpec("customers", "ts", ["churn/1", "churn/2"], "7d", "7d", gap="1d",
                                           train_window="7d"))
    store = bws.tracking
    parent = store.get_run(result.parent_run)
    assert parent.status == "finished" and parent.tags["mlops.kind"] == "backtest"
    assert parent.params["dataset_version"] == "customers@1" and parent.params["gap"] == "1d"
    history = store.metric_history(parent.uuid, "churn/2.accuracy")
    assert list(history.steps) == [w.index for w in result.windows]
    np.testing.assert_allclose(history.values, [w.metrics["churn/2"]["accuracy"] for w in result.windows])
    assert parent.metrics["churn/1.f1.all"].last == pytest.approx(result.aggregate["churn/1"]["f1"])
    children = [store.get_run(w.child_run) for w in result.windows]
    assert [c.parent_uuid for c in children] == [parent.uuid] * len(result.windows)
    assert children[0].params["test_start"] == result.windows[0].test_start.isoformat()
    assert children[2].metrics["churn/1.roc_auc"].last == pytest.approx(result.windows[2].metrics["churn/1"]["roc_auc"])
    inputs = store.list_inputs(parent.uuid)
    assert [(i.dataset, i.version) for i in inputs] == [("customers", "1")]
    # sliding 7d train + 1d gap: the first test window starts 8 days in
    assert result.windows[0].test_start == sales.ts.min().to_pydatetime() + dt.timedelta(days=8)
    assert result.windows[0].train_end == result.windows[0].test_start - dt.timedelta(days=1)
    again = load_backtest(bws, result.id)
    assert again.to_dict() == result.to_dict()
    assert load_backtest(bws, parent.uuid[:8]).id == result.id
    assert [b.id for b in list_backtests(bws)] == [result.id]


def test_row_count_windows(bws, sales, two_versions):
    result = run_backtest(bws, BacktestSpec("customers", "ts", ["churn/1"], test_window="1000rows",
                                           stride="1000rows"))
    assert [w.rows for w in result.windows] == [1000, 1000, 1000, 1000, 200]
    assert [w.ragged for w in result.windows] == [False] * 4 + [True]


def test_cancel_marks_runs_killed(bws, sales, two_versions):
    cancel = threading.Event()

    def on_progress(fraction, message):
        if "window 2/" in message:
            cancel.set()

    with pytest.raises(Cancelled):
        run_backtest(bws, BacktestSpec("customers", "ts", ["churn/1"], "7d", "7d"), progress=Progress(
            on_progress, cancel_event=cancel))
    [bt] = list_backtests(bws)
    assert bt.status == "killed"
    assert bws.tracking.get_run(bt.parent_run).status == "killed"
    assert 1 <= len(load_backtest(bws, bt.id).windows) <= 3


@pytest.mark.parametrize("change,needle", [
    ({"dataset": "nope"}, "nope"),
    ({"time_col": "when"}, "no column 'when'"),
    ({"time_col": "plan"}, "is string, not a date"),
    ({"versions": ["ghost/1"]}, "ghost"),
    ({"test_window": "7parsecs"}, "--test-window"),
    ({"test_window": "30"}, "holds dates or times"),
    ({"train_window": "500rows"}, "counted in rows but"),
    ({"target": "nothing"}, "no target column 'nothing'"),
    ({"train_window": "50d"}, "too short"),
    ({"refit_every": 2}, "needs --recipe"),
    ({"versions": []}, "give --versions"),
])
def test_bad_specs_refused_in_words(bws, sales, two_versions, change, needle):
    spec = BacktestSpec("customers", "ts", ["churn/1"], "7d", "7d")
    for key, value in change.items():
        setattr(spec, key, value)
    with pytest.raises((UsageError, NotFoundError), match=needle):
        run_backtest(bws, spec)
    assert list_backtests(bws) == []  # refused before anything was stored


def test_model_missing_an_input_column(bws, tmp_path, two_versions, sales):
    from tests.backtest.conftest import ingest_frame

    ingest_frame(bws, tmp_path, sales.drop(columns=["calls"]), "thin")
    with pytest.raises(UsageError, match="lacks the input column"):
        run_backtest(bws, BacktestSpec("thin", "ts", ["churn/1"], "7d", "7d"))


def test_regression_replay_and_integer_time(ws, tmp_path):
    import pandas as pd
    from sklearn.linear_model import Ridge

    from mlops_desktop import registry
    from tests.backtest.conftest import ingest_frame
    from tests.registry.conftest import log_sklearn_run

    rng = np.random.default_rng(0)
    n = 900
    frame = pd.DataFrame({"step": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n)})
    frame["y"] = 3 * frame.a - frame.b + rng.normal(0, 0.5, n) + np.arange(n) / 300
    ingest_frame(ws, tmp_path, frame, "series")
    model = Ridge().fit(frame[["a", "b"]], frame.y)
    registry.register(ws, log_sklearn_run(ws, tmp_path, model, frame[["a", "b", "y"]], target="y"), "ridge")
    result = run_backtest(ws, BacktestSpec("series", "step", ["ridge/1"], test_window="300", stride="300"))
    assert result.task == "regression" and [w.rows for w in result.windows] == [300, 300, 300]
    for w in result.windows:
        rows = frame[(frame.step >= w.test_start) & (frame.step < w.test_end)]
        pred = model.predict(rows[["a", "b"]])
        assert w.metrics["ridge/1"]["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(rows.y, pred)),
                                                             rel=1e-4)
        assert w.metrics["ridge/1"]["r2"] == pytest.approx(skm.r2_score(rows.y, pred), rel=1e-3)
    assert result.aggregate["ridge/1"]["mae"] == pytest.approx(
        skm.mean_absolute_error(frame.y, model.predict(frame[["a", "b"]])), rel=1e-4)
