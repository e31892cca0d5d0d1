"""Registry test helpers: real fitted models saved as the recipes save them, logged as artifacts of real runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest


def churn_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"tenure": rng.normal(20, 8, n), "spend": rng.normal(50, 15, n),
                          "plan": rng.choice(["basic", "plus", "pro"], n), "calls": rng.integers(0, 6, n)})
    score = (frame.tenure < 15).astype(int) + (frame.plan == "basic") + 0.3 * frame.calls
    frame["churned"] = np.where(score + rng.normal(0, 0.3, n) > 1.2, "yes", "no")
    return frame


def fit_pipeline(frame: pd.DataFrame, estimator: Any = None) -> Any:
    from sklearn.linear_model import LogisticRegression

    from mlops_desktop.recipes.sklearn_recipe import build_pipeline

    x = frame.drop(columns=["churned"])
    model = build_pipeline(estimator or LogisticRegression(max_iter=500), x)
    return model.fit(x, frame["churned"])


def log_sklearn_run(ws: Any, tmp_path: Path, model: Any, frame: pd.DataFrame, *, target: str = "churned",
                    experiment: str = "churn", inputs: list[tuple[str, str]] = (), metrics: dict | None = None,
                    name: str = "run") -> str:
    """A finished run whose artifact folder `model/` is what the sklearn recipe writes."""
    import skops.io as sio
    from sklearn.base import is_classifier

    from mlops_desktop.recipes.common import write_model_extras

    store = ws.tracking
    run = store.create_run(store.get_or_create_experiment(experiment).id, name=name,
                           params={"target": target})
    folder = tmp_path / f"art-{run.uuid[:8]}" / "model"
    folder.mkdir(parents=True)
    sio.dump(model, folder / "model.skops")
    x, y = frame.drop(columns=[target]), frame[target]
    task = "classification" if is_classifier(model) else "regression"
    write_model_extras(folder, x, y, task, list(model.classes_) if task == "classification" else None,
                       x.tail(100), ["sklearn", "numpy", "scipy", "pandas", "skops"])
    (folder / "MLmodel.json").write_text(json.dumps({"flavor": "sklearn", "format": "skops"}))
    store.log_artifact(run.uuid, folder)
    for dataset, version in inputs:
        store.log_input(run.uuid, dataset, version, context="training")
    steps = np.zeros(1, dtype=np.int64)
    for key, value in (metrics or {"val_accuracy": 0.9}).items():
        store.log_metric_arrays(run.uuid, key, steps, steps, np.array([value], dtype=np.float64))
    store.set_terminated(run.uuid, "finished")
    return run.uuid


@pytest.fixture
def churn() -> pd.DataFrame:
    return churn_frame()


@pytest.fixture
def churn_model(churn: pd.DataFrame) -> Any:
    return fit_pipeline(churn)


@pytest.fixture
def churn_run(ws, tmp_path: Path, churn_model, churn) -> str:
    return log_sklearn_run(ws, tmp_path, churn_model, churn)
