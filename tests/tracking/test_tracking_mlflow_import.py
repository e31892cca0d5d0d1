"""Import from a database written by the real mlflow package."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from mlops_desktop.errors import UsageError
from mlops_desktop.tracking.mlflow_import import import_mlflow
from mlops_desktop.workspace import Workspace

pytest.importorskip("mlflow")

MAKE_MLFLOW_DB = """
import sys, math, mlflow
root = sys.argv[1]
mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
mlflow.set_experiment("churn")
with mlflow.start_run(run_name="parent") as parent:
    mlflow.log_params({"lr": 0.01, "optimizer": "adam"})
    mlflow.set_tag("team", "risk")
    for i in range(1500):
        mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
    mlflow.log_metric("weird", math.nan, step=0)
    mlflow.log_text("hello", "notes/readme.txt")
    with mlflow.start_run(run_name="child", nested=True) as child:
        mlflow.log_param("depth", 3)
        mlflow.log_metric("acc", 0.9, step=1)
mlflow.set_experiment("other")
with mlflow.start_run(run_name="failed-one") as failed:
    mlflow.log_metric("acc", 0.1)
mlflow.end_run()
client = mlflow.tracking.MlflowClient()
client.set_terminated(failed.info.run_id, "FAILED")
print(parent.info.run_id, child.info.run_id, failed.info.run_id)
"""


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    proc = subprocess.run([sys.executable, "-c", MAKE_MLFLOW_DB, str(root)], capture_output=True, text=True,
                          timeout=600, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids = proc.stdout.split()[-3:]
    return root / "mlflow.db", ids


def test_import_runs_params_tags_and_full_histories(tmp_path, mlflow_db):
    db, (parent, child, failed) = mlflow_db
    ws = Workspace.open(tmp_path / "ws")
    stats = import_mlflow(ws.tracking, f"sqlite:///{db}")
    assert stats.runs == 3 and stats.metric_points == 1500 + 1 + 1 + 1
    p = ws.tracking.get_run(parent)
    assert p.name == "parent" and p.status == "finished"
    assert p.params == {"lr": "0.01", "optimizer": "adam"}
    assert p.tags["team"] == "risk" and p.tags["imported_from"] == "mlflow"
    hist = ws.tracking.metric_history(parent, "loss")
    np.testing.assert_array_equal(hist.steps, np.arange(1500))
    np.testing.assert_allclose(hist.values, 1.0 / (np.arange(1500) + 1))
    assert math.isnan(ws.tracking.metric_history(parent, "weird").values[0])
    assert ws.tracking.get_run(child).parent_uuid == parent
    assert ws.tracking.get_run(failed).status == "failed"
    exp_names = {e.name for e in ws.tracking.list_experiments()}
    assert {"churn", "other"} <= exp_names
    assert [a.path for a in ws.tracking.list_artifacts(parent)] == ["notes/readme.txt"]
    # importing again adds nothing
    again = import_mlflow(ws.tracking, f"sqlite:///{db}")
    assert again.runs == 0 and again.runs_skipped == 3
    assert ws.tracking.search_runs().total == 3
    ws.close()


def test_import_one_experiment_only(tmp_path, mlflow_db):
    db, _ = mlflow_db
    ws = Workspace.open(tmp_path / "ws")
    stats = import_mlflow(ws.tracking, f"sqlite:///{db}", ["other"])
    assert stats.runs == 1
    with pytest.raises(UsageError, match="no MLflow experiment named nope"):
        import_mlflow(ws.tracking, f"sqlite:///{db}", ["nope"])
    ws.close()


def test_import_rejects_what_is_not_an_mlflow_db(tmp_path):
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(UsageError, match="not an MLflow tracking database"):
        import_mlflow(ws.tracking, f"sqlite:///{ws.paths.db}")
    with pytest.raises(UsageError, match="no MLflow database"):
        import_mlflow(ws.tracking, f"sqlite:///{tmp_path}/missing.db")
    with pytest.raises(UsageError, match="only sqlite"):
        import_mlflow(ws.tracking, "http://localhost:5000")
    ws.close()


def test_import_cli_json(tmp_path, mlflow_db):
    import json

    db, _ = mlflow_db
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(tmp_path / "ws"), "import", "mlflow",
                           "--tracking-uri", f"sqlite:///{db}", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["runs"] == 3
