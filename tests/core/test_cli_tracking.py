"""The operator console over the tracking store: tables, --json, exit codes, plain errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mlops_desktop.tracking as mt
from mlops_desktop.cli.main import main


def cli(*args, home):
    proc = subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=120)
    return proc


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "ws"
    for i, lr in enumerate([0.1, 0.01, 0.001]):
        with mt.start_run(experiment="cls", name=f"run-{i}", home=h, params={"lr": lr, "opt": "adam"}):
            for step in range(10):
                mt.log_metric("acc", 0.5 + lr * step, step=step)
    return h


def test_runs_list_table_and_json(home, capsys):
    assert main(["--home", str(home), "runs", "list", "--order-by", "metrics.acc DESC"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["RUN", "NAME", "EXPERIMENT", "STATUS"]
    assert "run-0" in lines[1] and "(1-3 of 3 runs)" in out
    assert main(["runs", "list", "--home", str(home), "--json", "--filter", "params.lr < 0.05"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total"] == 2 and {r["name"] for r in data["runs"]} == {"run-1", "run-2"}


def test_runs_show_compare_history_delete(home, capsys):
    main(["--home", str(home), "runs", "list", "--json"])
    runs = json.loads(capsys.readouterr().out)["runs"]
    a, b = runs[0]["uuid"], runs[1]["uuid"]
    assert main(["--home", str(home), "runs", "show", a[:8]]) == 0
    out = capsys.readouterr().out
    assert a in out and "acc" in out and "status" in out
    assert main(["--home", str(home), "runs", "compare", a, b]) == 0
    out = capsys.readouterr().out
    lr_line = next(line for line in out.splitlines() if "params.lr" in line)
    opt_line = next(line for line in out.splitlines() if "params.opt" in line)
    assert lr_line.startswith("*") and not opt_line.startswith("*")
    assert main(["--home", str(home), "runs", "history", a, "acc", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == list(range(10))
    assert main(["--home", str(home), "runs", "delete", a]) == 0
    capsys.readouterr()
    main(["--home", str(home), "runs", "list", "--json"])
    assert json.loads(capsys.readouterr().out)["total"] == 2
    assert main(["--home", str(home), "runs", "restore", a]) == 0


def test_errors_are_words_with_meaningful_exit_codes(home):
    proc = cli("runs", "show", "ffffffffffff", home=home)
    assert proc.returncode == 3 and "no run" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("runs", "list", "--filter", "metrics.acc >", home=home)
    assert proc.returncode == 2 and "bad filter" in proc.stderr and "hint" in proc.stderr
    proc = cli("runs", "list", "--experiment", "nope", home=home)
    assert proc.returncode == 3
    proc = cli("runs", "sync", str(home / "missing.spool"), home=home)
    assert proc.returncode == 2 and "no spool file" in proc.stderr
    proc = cli("runs", "frobnicate", home=home)
    assert proc.returncode == 2


def test_runs_sync_twice_adds_nothing(tmp_path, capsys):
    spool = tmp_path / "offline.spool"
    with mt.start_run(experiment="offline", spool=spool):
        for i in range(100):
            mt.log_metric("x", float(i))
    home = tmp_path / "ws"
    assert main(["--home", str(home), "runs", "sync", str(spool), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["metric_points"] == 100
    assert main(["--home", str(home), "runs", "sync", str(spool), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["records"] == 0


def test_workspace_info_and_env_home(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_DESKTOP_HOME", str(tmp_path / "envhome"))
    assert main(["workspace", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["home"] == str(tmp_path / "envhome") and info["runs"] == 0


def test_default_home_is_in_the_user_data_dir(monkeypatch, tmp_path):
    from mlops_desktop.paths import default_home

    monkeypatch.delenv("MLOPS_DESKTOP_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "mlops-desktop" / "workspace"


def test_settings_are_typed_and_versioned(tmp_path):
    from mlops_desktop.errors import SchemaTooNewError, UsageError
    from mlops_desktop.settings import Settings

    path = tmp_path / "settings.json"
    Settings(flush_interval_s=0.5).save(path)
    assert Settings.load(path).flush_interval_s == 0.5
    path.write_text('{"version": 1, "flush_interval_s": "fast"}')
    with pytest.raises(UsageError, match="flush_interval_s.*must be float"):
        Settings.load(path)
    path.write_text('{"version": 99}')
    with pytest.raises(SchemaTooNewError):
        Settings.load(path)
    path.write_text("{broken")
    with pytest.raises(UsageError, match="unreadable"):
        Settings.load(path)


def test_tables_keep_one_line_per_row():
    import io

    from mlops_desktop.cli.output import table

    out = io.StringIO()
    table(["id", "command"], [(1, "python -c 'import time\nprint(1)'"), (2, "ls")], out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "import time ⏎ print(1)" in lines[1]
