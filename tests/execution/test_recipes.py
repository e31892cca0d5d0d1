"""Training recipes run as real jobs: scikit-learn (skops model, metrics by task, lineage) and the PyTorch MLP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_desktop.execution import Executor, JobRequest
from mlops_desktop.recipes import sklearn_recipe


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    df["label"] = ((df.a + df.b + (df.c == "x")) > 0.5).map({True: "yes", False: "no"})
    df["y"] = df.a * 3 + df.b + rng.normal(size=n) * 0.1
    path = tmp_path / "train data.csv"
    df.to_csv(path, index=False)
    return path


def _run_recipe(ws, tmp_path: Path, recipe: str, params: dict[str, str]):
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(kind="recipe", recipe=recipe, params=params, project_dir=str(tmp_path)))
        [job] = ex.follow([job.id])
    log = (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text()
    return job, log


def test_sklearn_classifier_recipe(ws, tmp_path: Path, table: Path) -> None:
    job, log = _run_recipe(ws, tmp_path, "sklearn", {
        "estimator": "sklearn.linear_model.LogisticRegression", "data": str(table), "target": "label",
        "features": "a,b,c", "C": "2.0", "max_iter": "300"})
    assert job.state == "succeeded", log
    run = ws.tracking.get_run(job.run_uuid)
    assert run.params["model.C"] == "2.0" and run.params["task"] == "classification"
    assert run.metrics["val_accuracy"].last > 0.8 and "val_roc_auc" in run.metrics and "val_f1_macro" in run.metrics
    arts = {a.path for a in ws.tracking.list_artifacts(job.run_uuid)}
    assert {"model/model.skops", "model/signature.json"} <= arts
    [inp] = ws.tracking.list_inputs(job.run_uuid)
    assert inp.dataset == "train data" and len(inp.digest) == 64
    sig = json.loads(ws.tracking.artifact_file(job.run_uuid, "model/signature.json").read_text())
    assert [i["name"] for i in sig["inputs"]] == ["a", "b", "c"] and sig["classes"] == ["no", "yes"]
    model = sklearn_recipe.load_model(ws.tracking.artifact_file(job.run_uuid, "model/model.skops"))
    pred = model.predict(pd.DataFrame({"a": [3.0], "b": [3.0], "c": ["x"]}))
    assert list(pred) == ["yes"]


def test_sklearn_regressor_recipe(ws, tmp_path: Path, table: Path) -> None:
    job, log = _run_recipe(ws, tmp_path, "sklearn", {
        "estimator": "sklearn.linear_model.Ridge", "data": str(table), "target": "y", "features": "a,b"})
    assert job.state == "succeeded", log
    metrics = ws.tracking.get_run(job.run_uuid).metrics
    assert metrics["val_r2"].last > 0.95 and metrics["val_rmse"].last < 0.5 and "val_mae" in metrics


@pytest.mark.parametrize("params, message", [
    ({"estimator": "sklearn.linear_model.Ridge", "target": "y", "alpha_typo": "1"}, "Ridge has no parameter alpha_typo"),
    ({"estimator": "os.system", "target": "y"}, "cannot import estimator|not a scikit-learn estimator"),
    ({"estimator": "sklearn.linear_model.Ridge", "target": "nope"}, "target column 'nope' is not in"),
    ({"estimator": "sklearn.linear_model.Ridge"}, "parameter 'target' is required"),
])
def test_sklearn_recipe_bad_input_fails_with_a_clear_message(ws, tmp_path: Path, table: Path, params, message) -> None:
    job, log = _run_recipe(ws, tmp_path, "sklearn", {"data": str(table), **params})
    assert job.state == "failed" and job.exit_code == 2
    import re

    assert re.search(message, log), log
    assert ws.tracking.get_run(job.run_uuid).status == "failed"


def test_torch_mlp_trains_checkpoints_and_resumes(ws, tmp_path: Path, table: Path) -> None:
    ckpt = tmp_path / "ckpt"
    params = {"data": str(table), "target": "label", "features": "a,b,c", "epochs": "3", "batch_size": "64",
              "hidden": "16", "lr": "0.01", "checkpoint_dir": str(ckpt)}
    job, log = _run_recipe(ws, tmp_path, "torch-mlp", params)
    assert job.state == "succeeded", log
    run = ws.tracking.get_run(job.run_uuid)
    steps_per_epoch = -(-240 // 64)
    assert run.metrics["train_loss"].count == 3 * steps_per_epoch  # one point per step, logged as tensors
    assert run.params["device"] == "cpu" and run.params["amp"] == "false"
    assert run.metrics["val_accuracy"].count == 3
    assert (ckpt / "last.pt").exists() and (ckpt / "best.pt").exists()
    assert "model/model.pt" in {a.path for a in ws.tracking.list_artifacts(job.run_uuid)}
    # resume: 5 epochs asked, 3 done -> 2 more, steps continue where they stopped
    job2, log2 = _run_recipe(ws, tmp_path, "torch-mlp", {**params, "epochs": "5"})
    assert job2.state == "succeeded", log2
    assert "resumed from" in log2 and "epoch 3:" in log2 and "epoch 0:" not in log2
    hist = ws.tracking.metric_history(job2.run_uuid, "train_loss")
    assert hist.steps[0] == 3 * steps_per_epoch and len(hist.steps) == 2 * steps_per_epoch
    import torch

    weights = torch.load(ws.tracking.artifact_file(job2.run_uuid, "model/model.pt"), weights_only=True)
    assert "model" in weights and weights["mean"].shape[0] == 5  # a, b and three one-hot columns of c


def test_torch_mlp_early_stopping(ws, tmp_path: Path, table: Path) -> None:
    job, log = _run_recipe(ws, tmp_path, "torch-mlp", {
        "data": str(table), "target": "y", "features": "a,b", "epochs": "200", "patience": "1", "lr": "0.5",
        "hidden": "8", "checkpoint_dir": str(tmp_path / "ck2")})
    assert job.state == "succeeded", log
    assert "early stop after epoch" in log
    assert "mlops.early_stopped" in ws.tracking.get_run(job.run_uuid).tags


def test_sklearn_recipe_reads_a_lake_dataset_with_lineage(ws, tmp_path: Path, table: Path) -> None:
    from mlops_desktop.data.ingest import ingest

    ingest(ws, [str(table)], "churn")
    job, log = _run_recipe(ws, tmp_path, "sklearn", {
        "estimator": "sklearn.tree.DecisionTreeClassifier", "data": "lake:churn@1", "target": "label",
        "max_depth": "4"})
    assert job.state == "succeeded", log
    [inp] = ws.tracking.list_inputs(job.run_uuid)
    assert (inp.dataset, inp.version, inp.context) == ("churn", "1", "training") and inp.digest
    assert ws.tracking.get_run(job.run_uuid).metrics["val_accuracy"].last > 0.7
