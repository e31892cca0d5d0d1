"""MlflowClient over a workspace, checked against what MLflow's MlflowClient documents."""

from __future__ import annotations

import pytest

from mlops_desktop.errors import NotFoundError, UsageError
from mlops_desktop.tracking import MlflowClient
from mlops_desktop.tracking.mlflow_api.entities import Metric, Param, RunTag


@pytest.fixture
def client(tmp_path):
    c = MlflowClient(f"mlops-desktop://{tmp_path / 'ws'}")
    yield c
    c.close()


def test_experiments_and_runs_lifecycle(client):
    exp_id = client.create_experiment("client-exp", tags={"owner": "me"})
    assert client.get_experiment(exp_id).tags == {"owner": "me"}
    assert client.get_experiment_by_name("client-exp").experiment_id == exp_id
    run = client.create_run(exp_id, start_time=1_700_000_000_000, tags={"k": "v"}, run_name="r")
    assert run.info.status == "RUNNING" and run.info.start_time == 1_700_000_000_000 and run.info.run_name == "r"
    assert client.log_param(run.info.run_id, "lr", 0.1) == 0.1
    client.set_tag(run.info.run_id, "stage", "dev")
    client.set_terminated(run.info.run_id, end_time=1_700_000_060_000)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time == 1_700_000_060_000
    assert got.data.params == {"lr": "0.1"} and got.data.tags["stage"] == "dev" and got.data.tags["k"] == "v"
    client.set_terminated(run.info.run_id, "FAILED")
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    with pytest.raises(UsageError, match="FINISHED, FAILED or KILLED"):
        client.set_terminated(run.info.run_id, "DONE")
    client.rename_experiment(exp_id, "renamed")
    assert client.get_experiment(exp_id).name == "renamed"
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_log_metric_defaults_step_zero_and_log_batch(client):
    exp_id = client.create_experiment("m")
    run_id = client.create_run(exp_id).info.run_id
    client.log_metric(run_id, "acc", 0.5)   # step defaults to 0, timestamp to now (ms)
    client.log_batch(run_id, metrics=[Metric("acc", 0.6, 1_700_000_000_001, 1), Metric("loss", 2.0, 1_700_000_000_002, 1)],
                     params=[Param("opt", "adam")], tags=[RunTag("mlflow.runName", "renamed-run")])
    hist = client.get_metric_history(run_id, "acc")
    assert [(m.step, m.value) for m in hist] == [(0, 0.5), (1, 0.6)] and hist[1].timestamp == 1_700_000_000_001
    assert hist[0].timestamp > 1_700_000_000_000
    assert client.get_metric_history(run_id, "never") == []
    run = client.get_run(run_id)
    assert run.data.metrics == {"acc": 0.6, "loss": 2.0} and run.data.params == {"opt": "adam"}
    assert run.info.run_name == "renamed-run"
    with pytest.raises(UsageError, match="already logged"):
        client.log_param(run_id, "opt", "sgd")   # params are immutable, as in MLflow
    with pytest.raises(UsageError, match="must be a number"):
        client.log_metric(run_id, "acc", "high")


def test_search_runs_pages_with_a_token(client):
    exp_id = client.create_experiment("pages")
    ids = [client.create_run(exp_id, start_time=1_700_000_000_000 + i).info.run_id for i in range(5)]
    first = client.search_runs([exp_id], max_results=2)
    assert [r.info.run_id for r in first] == ids[::-1][:2] and first.token is not None
    rest = client.search_runs([exp_id], max_results=10, page_token=first.token)
    assert [r.info.run_id for r in rest] == ids[::-1][2:] and rest.token is None


def test_artifacts_list_and_download(client, tmp_path):
    exp_id = client.create_experiment("a")
    run_id = client.create_run(exp_id).info.run_id
    src = tmp_path / "model"
    src.mkdir()
    (src / "MLmodel").write_text("flavors: {}\n")
    (src / "weights.bin").write_bytes(b"\x00" * 10)
    client.log_artifacts(run_id, src, "model")
    client.log_text(run_id, "hello", "readme.txt")
    assert [(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)] == [
        ("model", True, None), ("readme.txt", False, 5)]
    assert [f.path for f in client.list_artifacts(run_id, "model")] == ["model/MLmodel", "model/weights.bin"]
    local = client.download_artifacts(run_id, "model", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "model").iterdir()) == ["MLmodel", "weights.bin"]
    assert local.endswith("out/model")
    with pytest.raises(NotFoundError, match="no artifact 'nothing'"):
        client.download_artifacts(run_id, "nothing", tmp_path / "out")
