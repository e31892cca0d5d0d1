"""Why a run failed: the client's mlops.error* tags on an exception, and `runs show` saying it."""

from __future__ import annotations

import json

import pytest
from tracking_helpers import run_python

from mlops_desktop.cli.main import main
from mlops_desktop.workspace import Workspace


def _only_run(home):
    ws = Workspace.open(home)
    (run,) = ws.tracking.search_runs().runs
    ws.close()
    return run


def test_an_exception_in_a_with_block_records_type_message_and_traceback(tmp_path):
    proc = run_python("""
        import mlops_desktop.tracking as mt

        def load_batch(i):
            raise ValueError(f"bad batch {i}: NaN in column 'price'\\nsecond line")

        def train():
            for i in range(10):
                mt.log_metric("loss", 1.0 / (i + 1), step=i)
                if i == 7:
                    load_batch(i)

        with mt.start_run(experiment="e", name="doomed"):
            train()
    """, tmp_path, check=False)
    assert proc.returncode == 1 and "ValueError: bad batch 7" in proc.stderr, "the user's traceback still prints"
    run = _only_run(tmp_path)
    assert run.status == "failed" and run.metrics["loss"].count == 8
    assert run.tags["mlops.error"] == "ValueError: bad batch 7: NaN in column 'price'"
    assert run.tags["mlops.error.type"] == "ValueError"
    assert run.tags["mlops.error.message"] == "bad batch 7: NaN in column 'price'\nsecond line"
    tb = run.tags["mlops.error.traceback"]
    assert tb.startswith("Traceback (most recent call last):") and "in load_batch" in tb and "in train" in tb


def test_an_uncaught_exception_outside_a_with_block_and_a_long_traceback(tmp_path):
    proc = run_python("""
        import mlops_desktop.tracking as mt

        class DataContractError(Exception):
            pass

        def deep(n):  # two functions in turn, so that Python does not fold the repeated frames
            if n == 0:
                raise DataContractError("column 'age' has 12 nulls")
            return deeper(n - 1)

        def deeper(n):
            return deep(n)

        mt.start_run(experiment="e")
        mt.log_param("p", 1)
        deep(300)
    """, tmp_path, check=False)
    assert proc.returncode == 1
    run = _only_run(tmp_path)
    assert run.status == "failed"
    assert run.tags["mlops.error.type"] == "DataContractError"
    tb = run.tags["mlops.error.traceback"]
    assert len(tb.encode()) <= 4096, "the traceback tag keeps only the last frames"
    assert tb.startswith("Traceback (last frames only):\n  File ") and tb.rstrip().endswith(
        "DataContractError: column 'age' has 12 nulls")


def test_sys_exit_with_an_error_code_fails_the_run_and_says_so(tmp_path):
    run_python("""
        import sys, mlops_desktop.tracking as mt
        with mt.start_run(experiment="e"):
            sys.exit(3)
    """, tmp_path, check=False)
    run = _only_run(tmp_path)
    assert run.status == "failed" and run.tags["mlops.error"] == "SystemExit: exit code 3"


def test_a_finished_run_has_no_error_tags(tmp_path):
    run_python("""
        import mlops_desktop.tracking as mt
        with mt.start_run(experiment="e"):
            try:
                raise KeyError("handled inside")
            except KeyError:
                pass
    """, tmp_path)
    run = _only_run(tmp_path)
    assert run.status == "finished" and not any(k.startswith("mlops.error") for k in run.tags)


@pytest.fixture
def failed_job_run(ws):
    """A run as the job executor leaves it: the client's tags plus the exit code and the output's last lines."""
    store = ws.tracking
    exp = store.get_or_create_experiment("jobs")
    run = store.create_run(exp.id, name="train-job")
    store.set_tags(run.uuid, {
        "mlops.error": "RuntimeError: CUDA out of memory", "mlops.error.type": "RuntimeError",
        "mlops.error.message": "CUDA out of memory. Tried to allocate 2.00 GiB",
        "mlops.error.traceback": 'Traceback (most recent call last):\n  File "train.py", line 9, in <module>\n'
                                 "RuntimeError: CUDA out of memory",
        "mlops.error.exit_code": "1", "mlops.error.output_tail": "epoch 3 loss 0.41\nRuntimeError: CUDA out of memory",
        "team": "vision"})
    store.set_terminated(run.uuid, "failed")
    return run


def test_runs_show_prints_why_a_run_failed(ws, failed_job_run, capsys):
    assert main(["--home", str(ws.root), "runs", "show", failed_job_run.uuid[:8]]) == 0
    out = capsys.readouterr().out
    why = out[out.index("why it failed:"):]
    assert "error      RuntimeError: CUDA out of memory" in why
    assert "exception  RuntimeError" in why and "message    CUDA out of memory. Tried to allocate 2.00 GiB" in why
    assert "exit code  1" in why
    assert '  traceback:\n    Traceback (most recent call last):\n      File "train.py", line 9, in <module>' in why
    assert "  last lines of output:\n    epoch 3 loss 0.41\n    RuntimeError: CUDA out of memory" in why
    tags_table = out[out.index("TAG "):]
    assert "team" in tags_table and "mlops.error" not in tags_table, "the reasons are shown once, not as tags"
    assert main(["--home", str(ws.root), "runs", "show", failed_job_run.uuid, "--json"]) == 0
    failure = json.loads(capsys.readouterr().out)["failure"]
    assert failure["summary"] == "RuntimeError: CUDA out of memory" and failure["exit_code"] == "1"
