"""`import mlops_desktop.tracking as mlflow`: the fluent API behaves as MLflow's documentation says it does.

Each test cites the MLflow behaviour it checks (mlflow.tracking.fluent docstrings, MLflow 3.x).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

import mlops_desktop.tracking as mlflow
from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.workspace import Workspace


@pytest.fixture
def home(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    monkeypatch.delenv("MLOPS_DESKTOP_HOME", raising=False)
    monkeypatch.delenv("MLOPS_EXPERIMENT", raising=False)
    monkeypatch.delenv("MLOPS_SPOOL", raising=False)
    mlflow.set_tracking_uri(f"mlops-desktop://{root}")
    return root


def test_tracking_uri_round_trips_and_names_the_workspace(home, tmp_path):
    # get_tracking_uri returns the URI set with set_tracking_uri; a plain folder is accepted too
    assert mlflow.get_tracking_uri() == f"mlops-desktop://{home}"
    mlflow.set_tracking_uri(str(tmp_path / "other"))
    assert mlflow.get_tracking_uri() == f"mlops-desktop://{tmp_path / 'other'}"
    with pytest.raises(UsageError, match="cannot log to the tracking URI 'http://localhost:5000'"):
        mlflow.set_tracking_uri("http://localhost:5000")


def test_start_run_returns_active_run_with_mlflow_info_and_data(home):
    # "Returns: mlflow.ActiveRun object that acts as a context manager wrapping the run's state"
    exp_id = mlflow.create_experiment("experiment1")
    before = int(time.time() * 1000)
    with mlflow.start_run(run_name="PARENT_RUN", experiment_id=exp_id, tags={"version": "v1", "priority": "P1"},
                          description="parent") as parent_run:
        mlflow.log_param("parent", "yes")
        assert mlflow.active_run().info.run_id == parent_run.info.run_id
        with mlflow.start_run(run_name="CHILD_RUN", experiment_id=exp_id, description="child",
                              nested=True) as child_run:
            mlflow.log_param("child", "yes")
    info = parent_run.info
    assert info.experiment_id == exp_id and info.run_name == "PARENT_RUN" and info.status == "FINISHED"
    assert before <= info.start_time <= info.end_time <= int(time.time() * 1000) + 1, "times are ms since the epoch"
    assert info.artifact_uri == f"mlops-desktop://{home}/runs/{info.run_id}/artifacts"
    assert parent_run.data.tags["mlflow.note.content"] == "parent"
    assert parent_run.data.tags["version"] == "v1" and parent_run.data.tags["priority"] == "P1"
    assert parent_run.data.params == {"parent": "yes"}
    # "Search all child runs with a parent id"
    query = f"tags.mlflow.parentRunId = '{parent_run.info.run_id}'"
    results = mlflow.search_runs(experiment_ids=[exp_id], filter_string=query)
    assert results[["run_id", "params.child", "tags.mlflow.runName"]].values.tolist() == [
        [child_run.info.run_id, "yes", "CHILD_RUN"]]
    assert mlflow.active_run() is None


def test_a_positional_argument_resumes_that_run(home):
    # "If you pass a run_id ..., start_run attempts to resume a run with the specified run ID";
    # "If resuming an existing run, the run status is set to RunStatus.RUNNING"
    with mlflow.start_run() as first:
        mlflow.log_metric("loss", 1.0, step=0)
    with mlflow.start_run(first.info.run_id) as again:
        assert again.info.run_id == first.info.run_id and again.info.status == "RUNNING"
        mlflow.log_metric("loss", 0.5, step=1)
    hist = mlflow.MlflowClient().get_metric_history(first.info.run_id, "loss")
    assert [(m.step, m.value) for m in hist] == [(0, 1.0), (1, 0.5)]
    with pytest.raises(NotFoundError, match="no run 0123abcd to resume"):
        mlflow.start_run("0123abcd")


def test_starting_a_second_run_without_nested_is_refused(home):
    # "Run with UUID ... is already active. To start a new run, first end the current run ... nested=True"
    with mlflow.start_run() as run:
        with pytest.raises(UsageError, match=f"run {run.info.run_id} is already active"):
            mlflow.start_run()
        with pytest.raises(UsageError, match="is not the parent_run_id"):
            mlflow.start_run(nested=True, parent_run_id="ffff0000")


def test_a_new_run_without_a_name_gets_a_random_one(home):
    # "If a new run is created and run_name is not specified, a random name will be generated for the run."
    with mlflow.start_run() as a:
        pass
    with mlflow.start_run() as b:
        pass
    assert a.info.run_name and b.info.run_name and a.info.run_name.count("-") == 2
    assert mlflow.get_run(a.info.run_id).data.tags["mlflow.runName"] == a.info.run_name


def test_end_run_statuses_and_failed_on_exception(home):
    # end_run(status="FINISHED"); the context manager ends FAILED on an exception
    mlflow.start_run()
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="KILLED")
    assert mlflow.get_run(run_id).info.status == "KILLED"
    with pytest.raises(ValueError):
        with mlflow.start_run() as failing:
            raise ValueError("bad batch")
    assert mlflow.get_run(failing.info.run_id).info.status == "FAILED"
    mlflow.start_run()
    with pytest.raises(UsageError, match="FINISHED, FAILED or KILLED"):
        mlflow.end_run(status="RUNNING")
    mlflow.end_run()


def test_log_calls_without_a_run_start_one_and_last_active_run_reads_it(home):
    # "If no run is active, this method will create a new active run." (log_param, log_metric, ...)
    assert mlflow.active_run() is None and mlflow.last_active_run() is None
    mlflow.log_param("param1", 5)
    mlflow.log_metric("foo", 1.5)
    run_id = mlflow.active_run().info.run_id
    mlflow.end_run()
    last = mlflow.last_active_run()
    assert last.info.run_id == run_id and last.info.status == "FINISHED"
    assert last.data.params == {"param1": "5"} and last.data.metrics == {"foo": 1.5}


def test_log_metric_timestamp_is_milliseconds(home):
    # "timestamp: Time when this metric was calculated. Defaults to the current system time." (ms in MLflow)
    ts = 1_700_000_000_123
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5, step=3, timestamp=ts)
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, step=4, timestamp=ts + 1)
    hist = mlflow.MlflowClient().get_metric_history(run.info.run_id, "acc")
    assert [(m.timestamp, m.step, m.value) for m in hist] == [(ts, 3, 0.5)]
    assert mlflow.MlflowClient().get_metric_history(run.info.run_id, "b")[0].timestamp == ts + 1


def test_set_experiment_by_name_creates_it_and_by_id_must_exist(home):
    # "If the experiment does not exist, a new experiment is created" (by name); an unknown id is an error
    exp = mlflow.set_experiment("churn")
    assert exp.name == "churn" and exp.lifecycle_stage == "active" and exp.creation_time > 1e12
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == exp.experiment_id
    assert mlflow.set_experiment(experiment_id=exp.experiment_id).name == "churn"
    assert mlflow.set_experiment(name="churn").experiment_id == exp.experiment_id
    with pytest.raises(NotFoundError):
        mlflow.set_experiment(experiment_id="999")
    with pytest.raises(UsageError, match="exactly one"):
        mlflow.set_experiment()


def test_create_get_and_search_experiments(home):
    # create_experiment returns the id and refuses an existing name; get_experiment_by_name returns None if missing
    first = mlflow.create_experiment("alpha", tags={"team": "ml"})
    mlflow.create_experiment("beta")
    with pytest.raises(UsageError, match="already exists"):
        mlflow.create_experiment("alpha")
    assert mlflow.get_experiment(first).tags == {"team": "ml"}
    assert mlflow.get_experiment_by_name("alpha").experiment_id == first
    assert mlflow.get_experiment_by_name("nope") is None
    assert [e.name for e in mlflow.search_experiments(filter_string="tags.team = 'ml'")] == ["alpha"]
    assert [e.name for e in mlflow.search_experiments(filter_string="name LIKE 'b%'")] == ["beta"]
    assert {e.name for e in mlflow.search_experiments()} == {"alpha", "beta"}
    mlflow.delete_experiment(first)
    assert [e.name for e in mlflow.search_experiments(view_type=mlflow.ViewType.DELETED_ONLY)] == ["alpha"]
    with pytest.raises(UsageError, match="bad filter clause"):
        mlflow.search_experiments(filter_string="name ~ 'x'")


def test_search_runs_returns_mlflows_dataframe(home):
    # "A pandas.DataFrame of runs, where each metric, parameter, and tag is expanded into its own column named
    # metrics.*, params.*, or tags.* respectively. For runs that don't have a particular metric, parameter, or tag,
    # the value for the corresponding column is (NumPy) Nan, None, or None respectively."
    mlflow.set_experiment("search")
    for alpha, rmse in ((0.1, 0.9), (0.5, 0.7), (1.0, 0.8)):
        with mlflow.start_run(run_name=f"alpha={alpha}"):
            mlflow.log_param("alpha", alpha)
            mlflow.log_metric("rmse", rmse)
    with mlflow.start_run(run_name="no metrics"):
        mlflow.set_tag("note", "x")
    df = mlflow.search_runs(order_by=["metrics.rmse ASC"])
    assert list(df.columns[:6]) == ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    assert {"metrics.rmse", "params.alpha", "tags.mlflow.runName", "tags.note"} <= set(df.columns)
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype) and str(df["start_time"].dt.tz) == "UTC"
    assert df["metrics.rmse"].tolist()[:3] == [0.7, 0.8, 0.9] and np.isnan(df["metrics.rmse"].tolist()[3])
    assert df["params.alpha"].tolist()[:3] == ["0.5", "1.0", "0.1"] and pd.isna(df["params.alpha"].iloc[3])
    filtered = mlflow.search_runs(filter_string="metrics.rmse < 0.85 and params.alpha != '1.0' "
                                                "and attributes.status = 'FINISHED'", output_format="list")
    assert [r.data.params["alpha"] for r in filtered] == ["0.5"]
    assert len(mlflow.search_runs(max_results=2)) == 2
    start = int(filtered[0].info.start_time)
    assert len(mlflow.search_runs(filter_string=f"attributes.start_time >= {start}")) >= 1, "ms in filters"
    assert len(mlflow.search_runs(experiment_names=["nope"])) == 0
    with pytest.raises(UsageError, match="bad filter"):
        mlflow.search_runs(filter_string="metrics.rmse <<< 1")


def test_artifact_helpers_write_what_mlflow_writes(home, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = tmp_path / "outputs"
    (folder / "sub").mkdir(parents=True)
    (folder / "test.txt").write_text("hello world!")
    (folder / "sub" / "b.txt").write_text("b")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [2, 3])
    with mlflow.start_run() as run:
        mlflow.log_artifacts(folder)                            # the folder's contents, not the folder
        mlflow.log_artifacts(folder, artifact_path="copy")
        mlflow.log_dict({"a": 1}, "conf/params.json")
        mlflow.log_dict({"a": 1}, "conf/params.yaml")
        mlflow.log_text("some text", "notes.txt")
        mlflow.log_figure(fig, "plots/line.png")
        mlflow.log_image(np.zeros((4, 5, 3), dtype=np.uint8), "img/black.png")
        mlflow.log_image(np.ones((2, 2)), key="mask", step=7)
        mlflow.log_table({"inputs": ["a", "b"], "score": [0.1, 0.2]}, "table.json")
        mlflow.log_table({"inputs": ["c"], "score": [0.3]}, "table.json")   # appends, as MLflow does
        uri = mlflow.get_artifact_uri("model")
    plt.close(fig)
    client = mlflow.MlflowClient()
    paths = [f.path for f in client.list_artifacts(run.info.run_id)]
    assert paths == ["conf", "copy", "images", "img", "notes.txt", "plots", "sub", "table.json", "test.txt"]
    assert [f.path for f in client.list_artifacts(run.info.run_id, "copy")] == ["copy/sub", "copy/test.txt"]
    out = tmp_path / "down"
    local = client.download_artifacts(run.info.run_id, "conf", out)
    assert json.loads((out / "conf" / "params.json").read_text()) == {"a": 1} and local == str(out / "conf")
    assert (out / "conf" / "params.yaml").read_text() == "a: 1\n"
    png = client.download_artifacts(run.info.run_id, "img/black.png", out)
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    assert Image.open(png).size == (5, 4)
    (image_series,) = [f.path for f in client.list_artifacts(run.info.run_id, "images")]
    assert image_series.startswith("images/mask%step%7%timestamp%")
    table = mlflow.load_table("table.json", run_ids=[run.info.run_id])
    assert table["inputs"].tolist() == ["a", "b", "c"]
    assert json.loads(mlflow.get_run(run.info.run_id).data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "table.json", "type": "table"}]
    assert uri == f"mlops-desktop://{home}/runs/{run.info.run_id}/artifacts/model"
    with pytest.raises(UsageError, match="must stay inside"):
        with mlflow.start_run():
            mlflow.log_text("x", "../escape.txt")


def test_log_input_records_lake_datasets_and_dataframes_as_lineage(home):
    import polars as pl

    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.1, 0.2, 0.3]})
    with mlflow.start_run() as run:
        mlflow.log_input(frame, context="training", name="features")
        mlflow.log_input(pl.DataFrame({"x": [1]}), context="eval")
        mlflow.log_input("sales", "3", "sha256:abc", "training")   # our earlier positional form
    got = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    by_name = {d.dataset.name: d for d in got}
    assert by_name["features"].dataset.source_type == "dataframe"
    assert json.loads(by_name["features"].dataset.profile) == {"num_rows": 3, "num_elements": 6}
    assert [t.value for t in by_name["features"].tags] == ["training"]
    assert by_name["dataframe"].tags[0].value == "eval"
    assert by_name["sales"].dataset.digest == "sha256:abc"
    ws = Workspace.open(home)
    assert ws.tracking.runs_reading("features") == [run.info.run_id]
    assert {i.version for i in ws.tracking.list_inputs(run.info.run_id) if i.dataset == "sales"} == {"3"}
    ws.close()
    with mlflow.start_run():
        with pytest.raises(UsageError, match="log_input takes"):
            mlflow.log_input(42)


def test_mlflow_tracking_module_alias_and_client(home):
    # scripts write mlflow.tracking.MlflowClient(); with the alias import that must still resolve
    with mlflow.start_run() as run:
        mlflow.log_metric("m", 1.0)
    client = mlflow.tracking.MlflowClient()
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_log_input_of_a_lake_dataset_by_name_records_its_latest_version(home, tmp_path):
    from mlops_desktop.data.ingest import ingest

    csv = tmp_path / "sales.csv"
    csv.write_text("region,amount\nnorth,3\nsouth,4\n")
    ws = Workspace.open(home)
    ingest(ws, [str(csv)], "sales")
    csv.write_text("region,amount\nnorth,3\nsouth,5\n")
    second = ingest(ws, [str(csv)], "sales")
    ws.close()
    with mlflow.start_run() as run:
        mlflow.log_input("sales", context="training")
        mlflow.log_input("sales@1", context="baseline")
    ws = Workspace.open(home)
    inputs = {(i.dataset, i.version, i.context) for i in ws.tracking.list_inputs(run.info.run_id)}
    ws.close()
    assert inputs == {("sales", str(second.version), "training"), ("sales", "1", "baseline")}
    with mlflow.start_run(), pytest.raises(NotFoundError):
        mlflow.log_input("no_such_dataset")


def test_mlflow_experiment_id_zero_is_the_default_experiment(home, monkeypatch):
    # mlflow's own set_experiment exports MLFLOW_EXPERIMENT_ID; "0" is MLflow's Default experiment
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    with mlflow.start_run() as run:
        pass
    assert mlflow.get_experiment(run.info.experiment_id).name == "Default"
