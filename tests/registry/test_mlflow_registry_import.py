"""`import mlflow` brings registered models, versions, aliases and local model artifacts from a database the real
mlflow package wrote: skops models import, pickled ones are refused unless the user opts in, re-import adds nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops_desktop import audit, registry
from mlops_desktop.cli.main import main

MLFLOW_SCRIPT = textwrap.dedent("""
    import sys, warnings
    warnings.filterwarnings("ignore")
    import mlflow, numpy as np, pandas as pd
    from sklearn.linear_model import LogisticRegression
    root = sys.argv[1]
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    mlflow.set_experiment("churn")
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    y = np.where(x.a + 0.5 * x.b > 0, "yes", "no")
    model = LogisticRegression().fit(x, y)
    x.to_parquet(f"{root}/rows.parquet")
    with mlflow.start_run():
        mlflow.log_metric("val_acc", 0.93)
        mlflow.sklearn.log_model(model, name="model", serialization_format="skops", input_example=x.head(3),
                                 registered_model_name="Churn Model")
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle", input_example=x.head(3),
                                 registered_model_name="Churn Model")
    client = mlflow.MlflowClient()
    client.set_registered_model_alias("Churn Model", "champion", "1")
    client.set_registered_model_alias("Churn Model", "challenger", "2")
""")


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mlflow")
    done = subprocess.run([sys.executable, "-c", MLFLOW_SCRIPT, str(root)], capture_output=True, text=True,
                          cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_registry_import_from_a_real_mlflow_database(ws, mlflow_db, capsys):
    uri = f"sqlite:///{mlflow_db}/mlflow.db"
    assert main(["import", "mlflow", "--tracking-uri", uri, "--home", str(ws.root), "--json"]) == 0
    out = capsys.readouterr()
    assert "model.pkl is a cloudpickle file; it is not unpickled" in out.out  # in the JSON's warnings
    versions = registry.store(ws).list_versions("churn-model")
    assert [v.version for v in versions] == [1]
    mv = versions[0]
    assert mv.tags["mlflow.name"] == "Churn Model" and mv.source == "mlflow:Churn Model/1"
    assert mv.metrics == {"val_acc": 0.93} and mv.run_uuid  # the run came with the tracking import
    assert mv.signature.input_names == ["a", "b"] and mv.signature.classes == ("no", "yes")
    assert registry.store(ws).get_model("churn-model").aliases == {"champion": 1}  # challenger's version refused
    rows = pd.read_parquet(mlflow_db / "rows.parquet")
    import skops.io as sio  # the original skops file, read by hand, says what the model predicts

    skops_file = next(mlflow_db.rglob("model.skops"))
    original = sio.load(skops_file, trusted=sio.get_untrusted_types(file=skops_file))
    got = registry.load_predictor(ws, "churn-model@champion").predict({c: rows[c].to_numpy() for c in rows})
    np.testing.assert_array_equal(got["prediction"], original.predict(rows))
    # again, now saying the pickle is ours: the missing version and its alias come; nothing is duplicated
    assert main(["import", "mlflow", "--tracking-uri", uri, "--home", str(ws.root), "--allow-pickle"]) == 0
    assert main(["import", "mlflow", "--tracking-uri", uri, "--home", str(ws.root), "--allow-pickle"]) == 0
    versions = registry.store(ws).list_versions("churn-model")
    assert [v.version for v in versions] == [1, 2]
    assert registry.open_version_bundle(ws, versions[1]).files.keys() >= {"model/model.skops"}  # stored as skops
    assert registry.store(ws).get_model("churn-model").aliases == {"champion": 1, "challenger": 2}
    events = audit.events(ws.db, subject="model:churn-model", kind_prefix="model.alias.")
    assert [e.actor for e in events] == ["mlflow-import", "mlflow-import"] and "imported from MLflow" in events[0].reason
    assert audit.verify(ws.db).ok
