"""MLflow's own example scripts run to the end: with our API (only the import changed), and unchanged with the
real mlflow package logging through our tracking-store plugin (MLFLOW_TRACKING_URI=mlops-desktop:///PATH)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlops_desktop.cli.main import main
from mlops_desktop.workspace import Workspace

EXAMPLES = Path(__file__).with_name("mlflow_examples")


def run_script(script: Path, cwd: Path, env: dict[str, str], *args: str, timeout: float = 300):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "MLFLOW_"))}
    full.update(env, PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, str(script), *args], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{script.name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def runs_of(home: Path):
    ws = Workspace.open(home)
    runs = ws.tracking.search_runs().runs
    ws.close()
    return runs


def test_quickstart_runs_with_only_the_import_changed(tmp_path):
    home = tmp_path / "ws"
    run_script(EXAMPLES / "quickstart_mlflow_tracking.py", tmp_path, {"MLOPS_DESKTOP_HOME": str(home)})
    (run,) = runs_of(home)  # no start_run in the script: the first log call started the run
    assert run.status == "finished" and 0 <= int(run.params["param1"]) <= 100
    assert run.metrics["foo"].count == 3 and run.metrics["accuracy 2"].count == 1
    ws = Workspace.open(home)
    assert [a.path for a in ws.tracking.list_artifacts(run.uuid)] == ["test.txt"]
    assert ws.tracking.get_experiment(run.experiment_id).name == "Default"
    ws.close()


def write_wine_csv(path: Path, rows: int = 400) -> None:
    """A file with the wine-quality data set's columns (the real one cannot be downloaded here)."""
    rng = np.random.default_rng(7)
    cols = ["fixed acidity", "volatile acidity", "citric acid", "residual sugar", "chlorides",
            "free sulfur dioxide", "total sulfur dioxide", "density", "pH", "sulphates", "alcohol"]
    x = rng.normal(size=(rows, len(cols)))
    quality = np.clip(np.rint(5.6 + 0.8 * x[:, 10] - 0.5 * x[:, 1] + 0.3 * rng.normal(size=rows)), 3, 9)
    lines = [";".join(f'"{c}"' for c in [*cols, "quality"])]
    lines += [";".join(f"{v:.4f}" for v in row) + f";{int(q)}" for row, q in zip(x, quality, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def test_sklearn_elasticnet_wine_runs_to_the_end(tmp_path):
    home = tmp_path / "ws"
    write_wine_csv(tmp_path / "winequality-red.csv")
    proc = run_script(EXAMPLES / "sklearn_elasticnet_wine_train.py", tmp_path,
                      {"MLOPS_DESKTOP_HOME": str(home), "WINE_CSV": str(tmp_path / "winequality-red.csv")},
                      "0.3", "0.2")
    assert "Elasticnet model (alpha=0.300000, l1_ratio=0.200000):" in proc.stdout
    (run,) = runs_of(home)
    assert run.status == "finished" and run.params == {"alpha": "0.3", "l1_ratio": "0.2"}
    assert set(run.metrics) == {"rmse", "r2", "mae"}
    rmse = float(proc.stdout.split("RMSE: ")[1].split()[0])
    assert run.metrics["rmse"].last == pytest.approx(rmse)
    ws = Workspace.open(home)
    paths = [a.path for a in ws.tracking.list_artifacts(run.uuid)]
    ws.close()
    assert {"model/MLmodel", "model/model.skops", "model/MLmodel.json"} <= set(paths)
    # the script registers the model as 'ElasticnetWineModel': a DNS-label name here, registered as the run ended
    assert "'elasticnetwinemodel' (MLflow's name 'ElasticnetWineModel'" in proc.stderr
    with Workspace.open(home) as ws:
        from mlops_desktop import registry

        assert registry.resolve(ws, "elasticnetwinemodel").run_uuid == run.uuid


@pytest.fixture(scope="module")
def autolog_workspace(tmp_path_factory):
    """MLflow's sklearn autolog examples, unchanged, with the real mlflow package logging into a workspace."""
    root = tmp_path_factory.mktemp("autolog")
    home = root / "ws"
    scripts = root / "scripts"
    shutil.copytree(EXAMPLES / "sklearn_autolog", scripts)
    env = {"MLFLOW_TRACKING_URI": f"mlops-desktop://{home}"}
    linear = run_script(scripts / "linear_regression.py", scripts, env)
    pipeline = run_script(scripts / "pipeline.py", scripts, env)
    return home, linear.stdout, pipeline.stdout


def test_real_mlflow_autolog_writes_runs_into_the_workspace(autolog_workspace, capsys):
    home, linear_out, pipeline_out = autolog_workspace
    run_id = linear_out.split("Logged data and model in run ")[1].split()[0]
    assert "'training_score': 1.0" in linear_out, "the script read its metrics back through our store"
    assert "'fit_intercept': 'True'" in linear_out
    assert main(["--home", str(home), "runs", "show", run_id, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "finished" and shown["experiment"] == "Default"
    assert shown["metrics"]["training_r2_score"]["last"] == pytest.approx(1.0)
    assert shown["params"]["fit_intercept"] == "True" and shown["tags"]["mlflow.autologging"] == "sklearn"
    assert shown["name"], "MLflow named the run"
    (model,) = shown["models"]
    files = {a["path"] for a in model["artifacts"]}
    assert {"MLmodel", "model.pkl", "requirements.txt"} <= files and model["status"] == "READY"
    pipeline_run = next(r for r in runs_of(home) if r.uuid != run_id)
    assert pipeline_run.params["steps"].startswith("[('scaler', StandardScaler())") and "----------" in pipeline_out


def test_runs_show_table_lists_the_autologged_model(autolog_workspace, capsys):
    home, linear_out, _ = autolog_workspace
    run_id = linear_out.split("Logged data and model in run ")[1].split()[0]
    assert main(["--home", str(home), "runs", "show", run_id[:8]]) == 0
    out = capsys.readouterr().out
    assert "training_mean_squared_error" in out and "LOGGED MODEL" in out and "ready" in out
