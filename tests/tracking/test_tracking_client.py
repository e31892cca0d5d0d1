"""The tracking API used by training code: run lifecycle, non-blocking logging, tensors, spool mode."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tracking_helpers import run_python

import mlops_desktop.tracking as mt
from mlops_desktop.errors import UsageError
from mlops_desktop.tracking.spool import import_spool
from mlops_desktop.workspace import Workspace


def test_context_manager_finishes_and_flushes(tmp_path):
    home = tmp_path / "ws"
    with mt.start_run(experiment="exp", name="ok", home=home, params={"lr": 0.1}) as run:
        for i in range(1000):
            mt.log_metric("loss", 1.0 / (i + 1), step=i)
        mt.log_metrics({"a": 1, "b": np.float32(2.5)}, step=0)
        mt.set_tag("stage", "dev")
    ws = Workspace.open(home)
    got = ws.tracking.get_run(run.uuid)
    assert got.status == "finished" and got.end_time is not None
    assert got.metrics["loss"].count == 1000 and got.metrics["b"].last == 2.5
    assert got.params == {"lr": "0.1"} and got.tags == {"stage": "dev"}
    assert mt.active_run() is None
    ws.close()


def test_exception_marks_failed_and_keeps_points(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with mt.start_run(experiment="exp", home=tmp_path) as run:
            mt.log_metric("x", 1.0)
            1 / 0  # noqa: B018
    ws = Workspace.open(tmp_path)
    got = ws.tracking.get_run(run.uuid)
    assert got.status == "failed" and got.metrics["x"].count == 1
    ws.close()


def test_auto_steps_continue_per_key(tmp_path):
    with mt.start_run(home=tmp_path) as run:
        for v in (1.0, 2.0, 3.0):
            mt.log_metric("a", v)
        mt.log_metric("b", 9.0, step=100)
        mt.log_metric("b", 10.0)
    ws = Workspace.open(tmp_path)
    assert ws.tracking.metric_history(run.uuid, "a").steps.tolist() == [0, 1, 2]
    assert ws.tracking.metric_history(run.uuid, "b").steps.tolist() == [100, 101]
    ws.close()


@pytest.mark.parametrize("key, value, fragment", [
    ("loss", "0.5", "must be a number"),
    ("loss", None, "must be a number"),
    ("", 1.0, "non-empty strings"),
    (3, 1.0, "non-empty strings"),
])
def test_bad_metric_values_raise_at_the_call(tmp_path, key, value, fragment):
    with mt.start_run(home=tmp_path):
        with pytest.raises(UsageError, match=fragment):
            mt.log_metric(key, value)


def test_logging_without_a_run_starts_one_as_mlflow_does(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DESKTOP_HOME", str(tmp_path))
    assert mt.active_run() is None
    mt.log_params({"a": 1})
    run = mt.active_run()
    assert run is not None and run.info.status == "RUNNING"
    mt.end_run()
    ws = Workspace.open(tmp_path)
    got = ws.tracking.get_run(run.uuid)
    assert got.params == {"a": "1"} and got.status == "finished"
    assert ws.tracking.get_experiment(got.experiment_id).name == "Default"
    ws.close()


def test_torch_tensors_are_converted_off_the_callers_thread(tmp_path):
    torch = pytest.importorskip("torch")
    w = torch.nn.Linear(4, 1)
    with mt.start_run(home=tmp_path) as run:
        expected = []
        for step in range(50):
            loss = w(torch.randn(8, 4)).pow(2).mean()  # requires grad, like a real loss
            loss.backward()
            mt.log_metric("loss", loss, step=step)
            expected.append(loss.item())
        mt.log_metric("scalar_int_tensor", torch.tensor(7))
    ws = Workspace.open(tmp_path)
    np.testing.assert_allclose(ws.tracking.metric_history(run.uuid, "loss").values, expected, rtol=1e-6)
    assert ws.tracking.get_run(run.uuid).metrics["scalar_int_tensor"].last == 7.0
    ws.close()


def test_a_non_scalar_tensor_drops_only_its_own_key(tmp_path, capfd):
    torch = pytest.importorskip("torch")
    with mt.start_run(home=tmp_path) as run:
        mt.log_metric("good", 1.0, step=0)
        mt.log_metric("vector", torch.ones(3), step=0)
        mt.log_metric("good", 2.0, step=1)
    assert "metric 'vector': dropped 1 value(s)" in capfd.readouterr().err
    ws = Workspace.open(tmp_path)
    assert ws.tracking.metric_history(run.uuid, "good").values.tolist() == [1.0, 2.0]
    assert ws.tracking.get_run(run.uuid).status == "finished"
    ws.close()


def test_sigterm_marks_run_killed_and_keeps_flushed_points(tmp_path):
    home = tmp_path / "ws"
    proc = subprocess.Popen([sys.executable, "-c", f"""
import time, mlops_desktop.tracking as mt
with mt.start_run(experiment='exp', name='victim', home={str(home)!r}) as run:
    print(run.uuid, flush=True)
    for i in range(10**9):
        mt.log_metric('x', float(i), step=i)
        if i % 1000 == 0:
            time.sleep(0.01)
"""], stdout=subprocess.PIPE, text=True)
    run_uuid = proc.stdout.readline().strip()
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    ws = Workspace.open(home)
    got = ws.tracking.get_run(run_uuid)
    assert got.status == "killed"
    hist = ws.tracking.metric_history(run_uuid, "x")
    # everything queued before the signal was written, in order, with no gaps
    assert len(hist) > 1000 and hist.steps.tolist() == list(range(len(hist)))
    ws.close()


def test_a_scripts_own_sigterm_handler_is_left_alone(tmp_path):
    """Graceful-shutdown code keeps working: the script decides, and the run ends as the script ends it."""
    home = tmp_path / "ws"
    proc = run_python(f"""
import os, signal, time, mlops_desktop.tracking as mt
stop = []
signal.signal(signal.SIGTERM, lambda s, f: stop.append(s))
with mt.start_run(experiment='exp', home={str(home)!r}) as run:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    mt.log_metric('after_signal', 1.0)
    print(run.uuid, len(stop))
""", home)
    run_uuid, handled = proc.stdout.split()
    assert handled == "1"
    ws = Workspace.open(home)
    got = ws.tracking.get_run(run_uuid)
    assert got.status == "finished" and got.metrics["after_signal"].count == 1
    ws.close()


def test_run_id_env_attaches_to_a_run_created_by_the_job_runner(tmp_path):
    home = tmp_path / "ws"
    ws = Workspace.open(home)
    exp = ws.tracking.get_or_create_experiment("jobs")
    created = ws.tracking.create_run(exp.id, name="job-1", status="running")
    run_python("""
import mlops_desktop.tracking as mt
with mt.start_run() as run:
    mt.log_metric('loss', 0.5)
""", home, env={"MLOPS_RUN_ID": created.uuid})
    got = ws.tracking.get_run(created.uuid)
    assert got.status == "finished" and got.metrics["loss"].last == 0.5 and got.name == "job-1"
    assert ws.tracking.search_runs().total == 1
    ws.close()


def test_spool_mode_round_trip_is_idempotent_and_incremental(tmp_path):
    spool = tmp_path / "remote" / "run.spool"
    art = tmp_path / "weights.bin"
    art.write_bytes(b"\x00\x01" * 1000)
    with mt.start_run(experiment="remote-exp", name="r1", spool=spool, params={"lr": 0.01}) as run:
        for i in range(500):
            mt.log_metric("loss", 1.0 / (i + 1), step=i)
        mt.log_metric("nan_metric", float("nan"))
        mt.log_artifact(art, "model")
        mt.log_input("churn", 2, "sha256:x")
    ws = Workspace.open(tmp_path / "ws")
    first = import_spool(ws.tracking, spool)
    assert first.metric_points == 501 and first.runs == [run.uuid]
    again = import_spool(ws.tracking, spool)
    assert again.records == 0 and again.metric_points == 0
    got = ws.tracking.get_run(run.uuid)
    assert got.status == "finished" and got.metrics["loss"].count == 500 and got.params == {"lr": "0.01"}
    assert np.isnan(ws.tracking.metric_history(run.uuid, "nan_metric").values[0])
    assert ws.tracking.artifact_file(run.uuid, "model/weights.bin").read_bytes() == art.read_bytes()
    assert ws.tracking.list_inputs(run.uuid)[0].dataset == "churn"
    ws.close()


def test_two_importers_of_one_spool_apply_each_record_once(tmp_path):
    import threading

    spool = tmp_path / "s.spool"
    with mt.start_run(experiment="e", spool=spool, flush_interval=0.001) as run:
        for i in range(3000):
            mt.log_metric("a", float(i), step=i)
            if i % 100 == 0:
                mt.flush()  # many small records, so that the importers interleave
    Workspace.open(tmp_path / "ws").close()
    errors = []

    def importer():
        ws = Workspace.open(tmp_path / "ws")
        try:
            import_spool(ws.tracking, spool, batch_records=3)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            ws.close()

    threads = [threading.Thread(target=importer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ws = Workspace.open(tmp_path / "ws")
    hist = ws.tracking.metric_history(run.uuid, "a")
    assert hist.steps.tolist() == list(range(3000))
    ws.close()


def test_spool_import_ignores_a_partial_last_line_until_it_completes(tmp_path):
    spool = tmp_path / "s.spool"
    with mt.start_run(experiment="e", spool=spool) as run:
        mt.log_metric("a", 1.0, step=0)
    lines = spool.read_bytes().splitlines(keepends=True)
    spool.write_bytes(b"".join(lines[:-1]) + lines[-1][:10])  # run_end cut mid-line, as by a crash
    ws = Workspace.open(tmp_path / "ws")
    res = import_spool(ws.tracking, spool)
    assert res.skipped_partial_line and ws.tracking.get_run(run.uuid).status == "running"
    spool.write_bytes(b"".join(lines))  # the writer finished the line
    res2 = import_spool(ws.tracking, spool, start_offset=res.end_offset)
    assert res2.records == 1 and ws.tracking.get_run(run.uuid).status == "finished"
    assert ws.tracking.get_run(run.uuid).metrics["a"].count == 1
    ws.close()


def test_damaged_spool_is_reported_with_its_line(tmp_path):
    spool = tmp_path / "s.spool"
    with mt.start_run(experiment="e", spool=spool):
        mt.log_metric("a", 1.0)
    with spool.open("ab") as fh:
        fh.write(b"{not json}\n")
    ws = Workspace.open(tmp_path / "ws")
    with pytest.raises(UsageError, match=r"line \d+ .*not a spool record"):
        import_spool(ws.tracking, spool)
    not_spool = tmp_path / "x.txt"
    not_spool.write_text(json.dumps({"hello": 1}) + "\n")
    with pytest.raises(UsageError, match="not an MLOps Desktop spool"):
        import_spool(ws.tracking, not_spool)
    ws.close()
