"""Back-test fixtures: a time-ordered churn dataset in the lake and two registered versions fitted on its past."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.registry.conftest import fit_pipeline, log_sklearn_run

START = dt.datetime(2026, 1, 5)


def timed_churn(n: int = 4200, seed: int = 11, days: int = 42) -> pd.DataFrame:
    """`n` customers spread over `days` days; churn depends on tenure, plan and calls, drifting a little over time."""
    rng = np.random.default_rng(seed)
    ts = START + pd.to_timedelta(np.sort(rng.uniform(0, days * 86400, n)), unit="s")
    frame = pd.DataFrame({"ts": ts.astype("datetime64[us]"), "tenure": rng.normal(20, 8, n),
                          "spend": rng.normal(50, 15, n), "plan": rng.choice(["basic", "plus", "pro"], n),
                          "calls": rng.integers(0, 6, n)})
    drift = np.linspace(0, 0.6, n)
    score = (frame.tenure < 15).astype(int) + (frame.plan == "basic") + (0.3 + drift * 0.5) * frame.calls
    frame["churned"] = np.where(score + rng.normal(0, 0.4, n) > 1.2, "yes", "no")
    return frame


def ingest_frame(ws, tmp_path: Path, frame: pd.DataFrame, name: str) -> str:
    from mlops_desktop.data.ingest import ingest

    path = tmp_path / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    ingest(ws, [str(path)], name)
    return name


@dataclass
class Built:
    home: Path
    sales: pd.DataFrame
    models: list[Any]


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    """Built once per session (registering runs the ONNX conversion: seconds), copied for each test."""
    from sklearn.tree import DecisionTreeClassifier

    from mlops_desktop import registry
    from mlops_desktop.workspace import Workspace

    root = tmp_path_factory.mktemp("backtest-template")
    ws = Workspace.open(root / "ws")
    try:
        sales = timed_churn()
        ingest_frame(ws, root, sales, "customers")
        old = timed_churn(1500, seed=99).drop(columns=["ts"])
        models = [fit_pipeline(old), fit_pipeline(old, DecisionTreeClassifier(max_depth=3, random_state=0))]
        for i, model in enumerate(models):
            registry.register(ws, log_sklearn_run(ws, root, model, old, name=f"fit{i}"), "churn")
    finally:
        ws.close()
    return Built(root / "ws", sales, models)


@pytest.fixture
def bws(built, tmp_path):
    """A workspace holding `customers` (42 days, time column `ts`) and churn/1 (logistic), churn/2 (a tree)."""
    import shutil

    from mlops_desktop.workspace import Workspace

    home = tmp_path / "bws"
    shutil.copytree(built.home, home)
    workspace = Workspace.open(home)
    yield workspace
    workspace.close()


@pytest.fixture
def sales(built):
    return built.sales


@pytest.fixture
def two_versions(built):
    return built.models
