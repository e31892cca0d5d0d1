"""The `monitor` and `alerts` commands over a real managed router and real servers: status per arm, exports that
promtool accepts, compare-arms with nothing logged, the manual revert, the alert lifecycle (add, list, silence,
ack, load from mlops.toml), help for every action, and bad input refused in words with the right exit codes."""

from __future__ import annotations

import json

import requests
from router_factories import body

from mlops_desktop.cli.main import main
from mlops_desktop.monitoring.alerts import AlertStore
from mlops_desktop.monitoring.engine import Evaluator
from mlops_desktop.monitoring.series import label_key
from mlops_desktop.serving import router_manager


def cli(ws, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--home", str(ws.root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_monitor_commands_on_a_router(ws, deployment, capsys, tmp_path, promtool):
    router, _bad = deployment
    with requests.Session() as s:
        for _ in range(50):
            assert s.post(router.url + "/invocations", json=body(0.4), timeout=5).status_code == 200
    code, out, err = cli(ws, capsys, "monitor", "status", "churn", "--sample", "0.3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["deployment"]["kind"] == "router" and doc["down"] == []
    assert {r["arm"] for r in doc["arms"]} >= {"(all)"}
    code, out, _ = cli(ws, capsys, "monitor", "status", "churn", "--sample", "0.2")
    assert code == 0 and "3/3 targets answering" in out and "P99 MS" in out

    assert cli(ws, capsys, "alerts", "add", "slow", "--expr", "p99_latency > 0.5", "--for", "1m",
               "--severity", "critical", "--label", "team=ml")[0] == 0
    assert cli(ws, capsys, "alerts", "add", "v2-errors", "--expr", 'error_rate{arm="v2"} > 0.01',
               "--action", "revert", "--deployment", "churn")[0] == 0
    rules, dash, scrape = tmp_path / "r.yml", tmp_path / "d.json", tmp_path / "s.yml"
    code, out, err = cli(ws, capsys, "monitor", "export", "churn", "--grafana", str(dash), "--prometheus-rules",
                         str(rules), "--scrape-config", str(scrape))
    assert code == 0, err
    proc = promtool("check", "rules", str(rules))
    assert proc.returncode == 0 and "2 rules found" in proc.stdout, proc.stdout + proc.stderr
    assert json.loads(dash.read_text())["schemaVersion"] >= 39
    assert "mlops-churn" in scrape.read_text()

    code, out, _ = cli(ws, capsys, "monitor", "compare-arms", "churn", "--json")
    assert code == 0 and json.loads(out)["arms"][0]["arm"] == "v1"

    code, _, err = cli(ws, capsys, "monitor", "revert", "churn")
    assert code == 2 and "--reason" in err
    code, out, err = cli(ws, capsys, "monitor", "revert", "churn", "--reason", "v2 looks wrong")
    assert code == 0 and "back on version 1" in out, err
    assert router_manager.client(ws, "churn").state()["settings"]["kill_switch"] is True


def test_alert_lifecycle_and_bad_input(ws, capsys, tmp_path):
    code, _, err = cli(ws, capsys, "alerts", "add", "x", "--expr", "p99 ~ 1")
    assert code == 2 and "cannot read" in err and "Traceback" not in err
    code, _, err = cli(ws, capsys, "alerts", "add", "x", "--expr", "p99_latency > 1", "--severity", "page")
    assert code == 2 and "severity" in err
    assert cli(ws, capsys, "alerts", "add", "errs", "--expr", "error_rate > 0.05")[0] == 0
    Evaluator(ws, "churn").evaluate({("error_rate", label_key({})): 0.5})
    code, out, _ = cli(ws, capsys, "alerts", "list", "--json")
    [alert] = json.loads(out)
    assert alert["state"] == "firing" and alert["rule"] == "errs"
    code, _, err = cli(ws, capsys, "alerts", "silence", "--deployment", "churn", "--for", "30m")
    assert code == 2 and "comment" in err
    assert cli(ws, capsys, "alerts", "silence", "--deployment", "churn", "--for", "30m", "--comment", "fixing")[0] == 0
    code, out, _ = cli(ws, capsys, "alerts", "list")
    assert "firing (silenced)" in out
    code, out, _ = cli(ws, capsys, "alerts", "ack", str(alert["id"]), "--note", "on it")
    assert code == 0 and "acknowledged" in out
    assert AlertStore(ws).get(alert["id"]).ack_note == "on it"
    code, _, err = cli(ws, capsys, "alerts", "ack", "999")
    assert code == 3 and "no alert 999" in err
    (tmp_path / "mlops.toml").write_text('[[monitoring.rules]]\nname = "slow"\nexpr = "p99_latency > 0.5"\n')
    code, out, _ = cli(ws, capsys, "alerts", "load", str(tmp_path))
    assert code == 0 and "1 rules" in out
    code, out, _ = cli(ws, capsys, "alerts", "rules")
    assert "slow" in out and "errs" in out
    code, _, err = cli(ws, capsys, "monitor", "status", "nothing-here")
    assert code == 3 and "no deployment" in err
    code, _, err = cli(ws, capsys, "monitor", "export", "nothing-here")
    assert code == 2 and "--grafana" in err


def test_help_for_every_command(capsys):
    for command in ("monitor", "alerts"):
        try:
            main([command, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        out = capsys.readouterr().out
        assert "usage:" in out and len(out) > 400


def test_monitor_run_collects_evaluates_and_serves_drift_gauges(ws, deployment, capsys):
    router, _bad = deployment
    stop = __import__("threading").Event()

    def load() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                s.post(router.url + "/invocations", json=body(0.4), timeout=5)

    t = __import__("threading").Thread(target=load, daemon=True)
    t.start()
    try:
        assert cli(ws, capsys, "alerts", "add", "busy", "--expr", "requests_per_s > 0")[0] == 0
        code, out, err = cli(ws, capsys, "monitor", "run", "churn", "--interval", "0.5", "--duration", "4",
                             "--drift-every", "0", "--metrics-port", "0")
    finally:
        stop.set()
        t.join(10)
    assert code == 0, err
    assert "monitoring churn: 3 targets" in out and "drift gauges on http://127.0.0.1:" in out
    assert "alert 1 busy: firing" in out
    code, out, _ = cli(ws, capsys, "monitor", "series", "churn", "--json")
    names = {s["name"] for s in json.loads(out)}
    assert {"requests_per_s", "error_rate", "p99_latency", "up", "targets_down"} <= names
