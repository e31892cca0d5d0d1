"""The backtest commands: run/show/compare/list with tables and JSON, as a job (follow, cancel), and bad input with
clear messages and exit codes."""

from __future__ import annotations

import json
import time

from mlops_desktop.cli.main import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_run_show_compare_list(capsys, bws):
    home = str(bws.root)
    code, out, err = _run(capsys, "backtest", "run", "-d", "customers", "-t", "ts", "--versions", "churn/1,churn/2",
                          "--test-window", "7d", "--stride", "7d", "--gap", "1d", "--home", home, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["id"] == 1 and result["labels"] == ["churn/1", "churn/2"] and len(result["windows"]) == 6
    assert result["windows"][1]["train_end"] < result["windows"][1]["test_start"]  # ISO text, the 1 d gap
    code, out, _ = _run(capsys, "backtest", "show", "1", "--home", home)
    assert code == 0 and "back-test 1: finished, customers@1, 6 windows" in out
    assert "CHURN/1 ACCURACY" in out and "all" in out and "again: mlops-desktop backtest run --dataset customers" in out
    code, out, _ = _run(capsys, "backtest", "compare", "1", "-m", "roc_auc", "--home", home, "--json")
    cmp = json.loads(out)
    assert code == 0 and cmp["metric"] == "roc_auc" and sum(cmp["wins"].values()) == 6
    assert cmp["aggregate"]["churn/1"] == result["aggregate"]["churn/1"]["roc_auc"]
    code, out, _ = _run(capsys, "backtest", "compare", result["parent_run"][:10], "--home", home)
    assert code == 0 and "accuracy per window (higher is better" in out and "won" in out
    code, out, _ = _run(capsys, "backtest", "list", "--home", home)
    assert code == 0 and "churn/1, churn/2" in out


def test_bad_input_exit_codes(capsys, bws):
    home = str(bws.root)
    code, _, err = _run(capsys, "backtest", "run", "-d", "customers", "-t", "ts", "--versions", "churn/1",
                        "--test-window", "7 fortnights", "--home", home)
    assert code == 2 and "--test-window: '7 fortnights' is not a length" in err and "Traceback" not in err
    code, _, err = _run(capsys, "backtest", "run", "-d", "nope", "-t", "ts", "--versions", "churn/1",
                        "--test-window", "7d", "--home", home)
    assert code == 3 and "nope" in err
    code, _, err = _run(capsys, "backtest", "show", "42", "--home", home)
    assert code == 3 and "no back-test '42'" in err
    code, _, err = _run(capsys, "backtest", "compare", "1", "--home", home)
    assert code == 3
    code, _, err = _run(capsys, "backtest", "run", "-d", "customers", "-t", "ts", "--versions", "churn/1",
                        "--test-window", "7d", "--job", "--host", "gpu1", "--home", home)
    assert code == 2 and "no host 'gpu1'" in err


def test_as_a_job_follow_then_cancel(capsys, bws):
    from mlops_desktop.backtest.api import list_backtests
    from mlops_desktop.execution import Executor

    home = str(bws.root)
    code, out, err = _run(capsys, "backtest", "run", "-d", "customers", "-t", "ts", "--versions", "churn/1",
                          "--test-window", "7d", "--job", "--follow", "--home", home)
    assert code == 0, err
    assert "window 6/6 scored" in out and "back-test 1: finished" in out
    [bt] = list_backtests(bws)
    run = bws.tracking.get_run(bt.parent_run)
    assert run.tags.get("mlops.job_id") == "1" and run.tags["mlops.kind"] == "backtest"  # the job's run is the parent
    # a long one (420 windows of 10 rows), cancelled while it runs: the windows so far are kept, the runs killed
    code, out, err = _run(capsys, "backtest", "run", "-d", "customers", "-t", "ts", "--versions", "churn/1",
                          "--test-window", "10rows", "--job", "--home", home, "--json")
    assert code == 0, err
    job_id = json.loads(out)[0]["id"]
    deadline = time.monotonic() + 120
    with Executor(bws) as ex:
        while time.monotonic() < deadline:
            found = [b for b in list_backtests(bws) if b.id == 2]
            if found and bws.db.query("SELECT count(*) FROM backtest_windows WHERE backtest_id = 2")[0][0] >= 3:
                break
            ex.tick()
            time.sleep(0.2)
        ex.cancel(job_id, grace_s=30)
        ex.follow([job_id], run_queue=False)
        job = ex.jobs.get(job_id)
    assert job.state == "cancelled"
    bt2 = [b for b in list_backtests(bws) if b.id == 2][0]
    assert bt2.status == "killed" and bt2.error == "cancelled"
    kept = bws.db.query("SELECT count(*) FROM backtest_windows WHERE backtest_id = 2")[0][0]
    assert 3 <= kept < 420
