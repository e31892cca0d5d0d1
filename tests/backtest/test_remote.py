"""Back-tests as jobs on an SSH host (a real sshd on 127.0.0.1): the pack is synced, the host scores each window,
and the job's log becomes the same back-test as a local run; the plan's bundles are verified on the host."""

from __future__ import annotations

import json
import sys

import pytest

from mlops_desktop.backtest.api import BacktestSpec, list_backtests, run_backtest
from mlops_desktop.backtest.remote import PLAN, import_pending, pack, run_plan
from mlops_desktop.cli.main import main
from tests.execution.conftest import sshd  # noqa: F401 - the session's private sshd


def _flat(nested):
    return {f"{label}.{metric}": v for label, per in nested.items() for metric, v in per.items()}


@pytest.fixture
def box(bws, sshd, tmp_path):  # noqa: F811
    from mlops_desktop.execution.hosts import HostRegistry
    from mlops_desktop.execution.ssh import connect

    registry = HostRegistry(bws)
    host = registry.add("box", hostname="127.0.0.1", port=sshd.port, user=sshd.user,
                        identity_file=str(sshd.client_key), python=sys.executable, work_dir=str(tmp_path / "remote"),
                        max_jobs=2)
    connect(host, known_hosts=registry.known_hosts, accept_new=True).close()
    return host


def test_plan_runs_anywhere_and_equals_the_local_run(bws, tmp_path):
    import io

    spec = BacktestSpec("customers", "ts", ["churn/1", "churn/2"], "7d", "7d", gap="1d", refit_every=2,
                        recipe="sklearn.linear_model.LogisticRegression:max_iter=300")
    folder = pack(bws, spec)
    assert sorted(p.name for p in folder.iterdir()) == ["data", "models", PLAN]
    out = io.StringIO()
    assert run_plan(folder / PLAN, out) == 0
    lines = [json.loads(x.split(" ", 1)[1]) for x in out.getvalue().splitlines() if x.startswith("@@mlops-backtest-w")]
    local = run_backtest(bws, spec)
    assert len(lines) == len(local.windows)
    from mlops_desktop.backtest.metrics import Stats, window_metrics

    for line, w in zip(lines, local.windows, strict=True):
        assert line["rows"] == w.rows and line["train_rows"] == w.train_rows
        got = {label: window_metrics(Stats.from_dict(d)) for label, d in line["stats"].items()}
        assert _flat(got) == pytest.approx(_flat(w.metrics))


def test_a_changed_bundle_is_refused_on_the_host(bws):
    folder = pack(bws, BacktestSpec("customers", "ts", ["churn/1"], "7d", "7d"))
    model = next((folder / "models").iterdir()) / "model" / "model.skops"
    model.write_bytes(model.read_bytes() + b"x")
    with pytest.raises(Exception, match="changed|hash"):
        run_plan(folder / PLAN)


def test_ssh_job_follow_imports_the_backtest(capsys, bws, box):
    code = main(["backtest", "run", "-d", "customers", "-t", "ts", "--versions", "churn/1,churn/2", "--test-window",
                 "7d", "--job", "--host", "box", "--follow", "--home", str(bws.root)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "window 6/6 scored" in out and "back-test 1: finished" in out
    [bt] = list_backtests(bws)
    local = run_backtest(bws, BacktestSpec("customers", "ts", ["churn/1", "churn/2"], "7d", "7d"))
    remote = [b for b in list_backtests(bws) if b.id == bt.id][0]
    from mlops_desktop.backtest.api import load_backtest

    remote = load_backtest(bws, bt.id)
    assert [w.rows for w in remote.windows] == [w.rows for w in local.windows]
    for a, b in zip(remote.windows, local.windows, strict=True):
        assert _flat(a.metrics) == pytest.approx(_flat(b.metrics)) and a.test_start == b.test_start
    assert _flat(remote.aggregate) == pytest.approx(_flat(local.aggregate))
    run = bws.tracking.get_run(remote.parent_run)
    assert run.tags.get("mlops.job_id") == "1" and run.host == "box"
    assert import_pending(bws) == []  # imported once
