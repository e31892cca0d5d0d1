"""MlflowClient's model-registry calls over our registry, as MLflow documents its workflow: log a model in a run,
create the registered model, create a version from runs:/RUN/PATH, point an alias at it, read it back by alias;
and mlflow.sklearn.log_model(registered_model_name=...) registering the model when the run ends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mlops_desktop.tracking as mlflow
from mlops_desktop import registry
from mlops_desktop.errors import MlopsError, NotFoundError, UsageError
from mlops_desktop.workspace import Workspace


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "ws"
    monkeypatch.setenv("MLOPS_DESKTOP_HOME", str(home))
    mlflow.set_tracking_uri(f"mlops-desktop://{home}")
    yield home
    while mlflow.active_run():
        mlflow.end_run()


def _data():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.random(80), "b": rng.random(80)})
    return x, (x.a + 0.2 * x.b > 0.6).astype(int)


def test_the_documented_registry_workflow(home):
    x, y = _data()
    with mlflow.start_run() as run:
        model = LogisticRegression().fit(x, y)
        info = mlflow.sklearn.log_model(model, name="model", input_example=x.head(3))
    assert info.model_uri == f"runs:/{run.info.run_id}/model"
    client = mlflow.MlflowClient()
    created = client.create_registered_model("churn", tags={"team": "growth"}, description="churn scores")
    assert created.name == "churn" and created.tags == {"team": "growth"} and created.latest_versions == []
    with pytest.raises(UsageError, match="already exists"):
        client.create_registered_model("churn")
    mv = client.create_model_version("churn", info.model_uri, run.info.run_id)
    assert (mv.name, mv.version, mv.status, mv.run_id) == ("churn", "1", "READY", run.info.run_id)
    client.set_registered_model_alias("churn", "challenger", mv.version)
    by_alias = client.get_model_version_by_alias("churn", "challenger")
    assert by_alias.version == "1" and "challenger" in by_alias.aliases
    assert client.get_registered_model("churn").aliases == {"challenger": "1"}
    assert [v.version for v in client.search_model_versions("name = 'churn'")] == ["1"]
    # the version is a real bundle: its predictor answers as the logged model did
    with Workspace.open(home) as ws:
        predictor = registry.load_predictor(ws, "churn@challenger")
        out = predictor.predict({c: x[c].to_numpy() for c in x})
        np.testing.assert_array_equal(out["prediction"], model.predict(x))
        assert registry.resolve(ws, "churn/1").signature.input_names == ["a", "b"]
    # protected aliases need a reason (an extension of MLflow's call); with one it is recorded
    with pytest.raises(UsageError, match="needs a reason"):
        client.set_registered_model_alias("churn", "production", 1)
    client.set_registered_model_alias("churn", "production", 1, reason="passed review")
    with Workspace.open(home) as ws:
        history = registry.store(ws).alias_history("churn", "production")
        assert history[-1].reason == "passed review"
    client.delete_registered_model_alias("churn", "challenger")
    with pytest.raises(NotFoundError):
        client.get_model_version_by_alias("churn", "challenger")
    client.close()


def test_bad_sources_and_versions_are_refused_in_words(home):
    client = mlflow.MlflowClient()
    with pytest.raises(UsageError, match="runs:/RUN_ID/PATH"):
        client.create_model_version("churn", "s3://bucket/model")
    with pytest.raises(UsageError, match="positive numbers"):
        client.get_model_version("churn", "latest")
    with pytest.raises(MlopsError):
        client.create_model_version("churn", "runs:/0123456789abcdef/model")
    client.close()


def test_log_model_with_registered_model_name_registers_when_the_run_ends(home, capsys):
    x, y = _data()
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="clf", registered_model_name="scorer")
        with Workspace.open(home) as ws:  # not before the run has finished
            with pytest.raises(NotFoundError):
                registry.resolve(ws, "scorer")
    with Workspace.open(home) as ws:
        version = registry.resolve(ws, "scorer")
        assert version.version == 1 and version.run_uuid == run.info.run_id and version.artifact_path == "clf"
        assert ws.tracking.get_run(run.info.run_id).tags["mlops.registered"] == "scorer/1"
    assert "registered scorer/1" in capsys.readouterr().err


def test_a_failed_run_registers_nothing(home):
    x, y = _data()
    with pytest.raises(RuntimeError), mlflow.start_run():
        mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="clf", registered_model_name="broken")
        raise RuntimeError("training diverged")
    with Workspace.open(home) as ws, pytest.raises(NotFoundError):
        registry.resolve(ws, "broken")
