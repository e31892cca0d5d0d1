"""Drift of served traffic end to end: a model registered from a lake dataset, served by a real server with its
prediction log; the log's closed segments pulled over HTTP; unchanged traffic shows no drift, a planted shift in two
features (and so in the predictions) is flagged, per-feature overrides apply, the training sketch is computed once
and kept, and drift scores land in series that rules read."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from serving_helpers import running

from mlops_desktop import registry
from mlops_desktop.errors import UsageError
from mlops_desktop.monitoring import live_drift, predictions
from mlops_desktop.monitoring.series import SeriesStore
from mlops_desktop.monitoring.targets import MonitoredDeployment, ScrapeTarget
from mlops_desktop.serving.app import ServedModel
from mlops_desktop.serving.config import LogConfig, ServeConfig


def _registry_helpers():
    """The registry tests' helpers (their conftest, loaded under its own name)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "registry" / "conftest.py"
    spec = importlib.util.spec_from_file_location("registry_test_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("registry_test_helpers", module)
    spec.loader.exec_module(module)
    return module


_helpers = _registry_helpers()
churn_frame, fit_pipeline, log_sklearn_run = _helpers.churn_frame, _helpers.fit_pipeline, _helpers.log_sklearn_run


def _send(url: str, frame: pd.DataFrame) -> None:
    with requests.Session() as s:
        for lo in range(0, len(frame), 100):
            part = frame.iloc[lo:lo + 100]
            doc = {"dataframe_split": {"columns": list(part.columns), "data": part.values.tolist()}}
            r = s.post(url + "/invocations", json=doc, timeout=30)
            assert r.status_code == 200, r.text


def _wait_rows(url: str, rows: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        doc = requests.get(url + "/predictions/segments?after=0", timeout=5).json()
        if sum(s["rows"] for s in doc["segments"]) >= rows:
            return
        assert time.monotonic() < deadline, doc
        time.sleep(0.1)


@pytest.fixture
def served(ws, tmp_path):
    from mlops_desktop.data.ingest import ingest

    train = churn_frame(3000, seed=1)
    csv = tmp_path / "churn.csv"
    train.to_csv(csv, index=False)
    ingest(ws, [str(csv)], "churn_data")
    run = log_sklearn_run(ws, tmp_path, fit_pipeline(train), train, inputs=[("churn_data", "1")])
    registry.register(ws, run, "churn")
    predictor = registry.load_predictor(ws, "churn/1")
    config = ServeConfig(log=LogConfig(directory=tmp_path / "log", segment_max_age_s=0.2))
    with running(ServedModel("churn", "1", predictor), config) as srv:
        yield srv


def test_unchanged_traffic_does_not_drift_and_a_planted_shift_does(ws, served):
    dep = MonitoredDeployment("churn-live", "server", [ScrapeTarget(served.url, "server", "1", "1", "churn")],
                              model="churn")
    calm = churn_frame(1500, seed=2).drop(columns=["churned"])
    _send(served.url, calm)
    _wait_rows(served.url, 1500)
    mid = time.time()
    time.sleep(0.05)
    report = live_drift.deployment_drift(ws, dep, window_s=3600)
    [v] = report.versions
    assert v.rows == 1500 and v.report.drifted_features == [] and not v.report.dataset_drift, v.to_dict()
    assert v.prediction is not None and not v.prediction.drifted and v.prediction_reference.startswith("training")
    assert v.reference == "lake:churn_data@1"
    assert ws.db.query("SELECT COUNT(*) FROM monitor_sketches")[0][0] == 1  # computed once, kept

    shifted = churn_frame(1500, seed=3).drop(columns=["churned"])
    shifted["tenure"] += 15
    shifted["plan"] = "pro"
    _send(served.url, shifted)
    _wait_rows(served.url, 3000)
    now = time.time()
    report = live_drift.deployment_drift(ws, dep, window_s=now - mid, now=now)
    [v] = report.versions
    assert v.rows == 1500
    assert sorted(v.report.drifted_features) == ["plan", "tenure"] and v.report.dataset_drift
    assert v.prediction is not None and v.prediction.drifted
    methods = {f.column: f.method for f in v.report.features}
    assert methods["tenure"] == "wasserstein" and methods["plan"] == "jensenshannon"  # Evidently's defaults
    ts, any_score = SeriesStore(ws.db).read("churn-live", "drift.any", {"version": "1"})
    assert len(ts) == 2 and any_score[-1] > 0.1 > any_score[0]

    # per-feature overrides: PSI for tenure, a threshold plan can never reach
    over = live_drift.deployment_drift(ws, dep, window_s=now - mid, now=now, methods={"tenure": "psi"},
                                       thresholds={"plan": 0.99}, record=False)
    got = {f.column: f for f in over.versions[0].report.features}
    assert got["tenure"].method == "psi" and got["tenure"].drifted and not got["plan"].drifted
    with pytest.raises(UsageError, match="unknown drift method"):
        live_drift.deployment_drift(ws, dep, window_s=60, methods={"tenure": "magic"}, record=False)
    files = predictions.segment_files(ws, dep)
    assert files and all(f.is_relative_to(ws.root) for f in files)  # pulled over HTTP into the workspace


def test_an_empty_window_says_so(ws, served):
    dep = MonitoredDeployment("quiet", "server", [ScrapeTarget(served.url, "server", "1", "1", "churn")],
                              model="churn")
    report = live_drift.deployment_drift(ws, dep, window_s=60)
    assert report.versions == [] and "no predictions" in report.notes[0]
    with pytest.raises(UsageError, match="longer than 0"):
        live_drift.deployment_drift(ws, dep, window_s=0)
    assert np.isnan(live_drift.VersionDrift("1", 0, live_drift.DriftReport([]), None, "", "").any_score)
