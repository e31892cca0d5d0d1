"""The real mlflow package writing into a workspace through our plugins (MLFLOW_TRACKING_URI=mlops-desktop:...)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mlops_desktop.cli.main import main
from mlops_desktop.workspace import Workspace

mlflow = pytest.importorskip("mlflow")


@pytest.fixture
def uri(tmp_path):
    """mlflow pointed at a fresh workspace for this test (and back to no URI after it)."""
    home = tmp_path / "ws"
    value = f"mlops-desktop://{home}"
    saved = {k: v for k, v in os.environ.items() if k.startswith("MLFLOW_")}
    mlflow.set_tracking_uri(value)
    mlflow.set_experiment("Default")  # mlflow keeps the active experiment id across tracking URIs
    yield value
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri("")
    # mlflow's set_experiment exports MLFLOW_EXPERIMENT_ID for child processes: leave the environment as found
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        os.environ.pop(key)
    os.environ.update(saved)


def test_log_model_and_load_it_back(uri, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    X = np.array([[-2.0], [-1.0], [0.0], [1.0], [2.0], [1.0]])
    y = np.array([0, 0, 1, 1, 1, 0])
    model = LogisticRegression().fit(X, y)
    mlflow.set_experiment("models")
    with mlflow.start_run(run_name="logreg") as run:
        mlflow.log_metric("score", model.score(X, y))
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert loaded.predict(X).tolist() == model.predict(X).tolist()
    assert main(["--home", str(tmp_path / "ws"), "runs", "show", run.info.run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["name"] == "logreg" and shown["status"] == "finished" and shown["experiment"] == "models"
    (logged,) = shown["models"]
    assert logged["model_id"] == info.model_id and logged["name"] == "model"
    assert "MLmodel" in {a["path"] for a in logged["artifacts"]}
    # mlflow lists the run's model through the store, as it does on its own backends
    paths = [f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id, "model")]
    assert "model/MLmodel" in paths


def test_fluent_calls_search_and_history_round_trip(uri):
    mlflow.set_experiment("roundtrip")
    with mlflow.start_run(run_name="a", tags={"team": "ml"}) as run:
        mlflow.log_params({"lr": 0.1, "depth": 3})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step)
        mlflow.log_dict({"k": 1}, "conf.json")
    with mlflow.start_run(run_name="b"):
        mlflow.log_metric("loss", 9.0)
    df = mlflow.search_runs(filter_string="metrics.loss < 1 and tags.team = 'ml'")
    assert df["run_id"].tolist() == [run.info.run_id] and df["params.lr"].tolist() == ["0.1"]
    hist = mlflow.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.timestamp) for m in hist] == [(i, 1_700_000_000_000 + i) for i in range(5)]
    got = mlflow.get_run(run.info.run_id)
    assert got.data.metrics["loss"] == pytest.approx(0.2) and got.data.tags["mlflow.runName"] == "a"
    assert mlflow.artifacts.load_dict(f"{got.info.artifact_uri}/conf.json") == {"k": 1}


def test_errors_arrive_as_mlflow_exceptions_with_mlflow_codes(uri):
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as missing:
        mlflow.get_run("0" * 32)
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    mlflow.create_experiment("dup")
    with pytest.raises(MlflowException) as dup:
        mlflow.create_experiment("dup")
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with mlflow.start_run():
        mlflow.log_param("p", 1)
        with pytest.raises(MlflowException) as changed:
            mlflow.log_param("p", 2)
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE" and "immutable" in str(changed.value)


def test_an_exception_in_an_mlflow_run_fails_it_in_the_store(uri, tmp_path):
    with pytest.raises(ZeroDivisionError):
        with mlflow.start_run() as run:
            mlflow.log_metric("x", 1.0)
            1 / 0  # noqa: B018
    ws = Workspace.open(tmp_path / "ws")
    got = ws.tracking.get_run(run.info.run_id)
    ws.close()
    assert got.status == "failed" and got.metrics["x"].count == 1 and got.end_time is not None


def test_the_bare_scheme_means_the_default_workspace(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_"))}
    env.update(MLFLOW_TRACKING_URI="mlops-desktop:", MLOPS_DESKTOP_HOME=str(tmp_path / "default-ws"))
    code = "import mlflow\nmlflow.log_metric('x', 1.5)\nprint(mlflow.active_run().info.run_id)\nmlflow.end_run()\n"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    ws = Workspace.open(tmp_path / "default-ws")
    run = ws.tracking.get_run(proc.stdout.split()[-1])
    ws.close()
    assert run.metrics["x"].last == 1.5 and run.status == "finished"
