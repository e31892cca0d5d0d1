"""A managed local router through the CLI (a real detached process): start, status, live changes with who and why
(also in the workspace's audit log), a generated admin token, stop, a killed router shown as lost, and bad input
refused in words with the right exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from router_factories import ThresholdClassifier, body
from serving_helpers import running

from mlops_desktop import audit
from mlops_desktop.serving import router_manager
from mlops_desktop.serving.app import ServedModel

ROOT = Path(__file__).resolve().parents[2]


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlops_desktop", "--home", str(home), *args], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_a_managed_router_from_the_cli(ws, tmp_path):
    home = ws.root
    with running(ServedModel("m", "1", ThresholdClassifier())) as a, \
            running(ServedModel("m", "2", ThresholdClassifier())) as b:
        cfg = tmp_path / "ab.toml"
        cfg.write_text(f'name = "ab"\nport = 0\n[health]\ninterval_s = 0.2\n'
                       f'[[arms]]\nname = "v1"\nweight = 90\nbackends = ["{a.url}"]\n'
                       f'[[arms]]\nname = "v2"\nweight = 10\nbackends = ["{b.url}"]\n')
        p = cli(home, "router", "start", "ab", "--config", str(cfg), "--json")
        assert p.returncode == 0, p.stderr
        started = json.loads(p.stdout)
        token = Path(started["token_file"])
        assert token.stat().st_mode & 0o777 == 0o600  # the admin API got a token of its own
        url = started["url"]
        try:
            assert requests.post(url + "/invocations", json=body(0.9), timeout=10).json() == {"predictions": [1]}
            r = requests.post(url + "/admin/settings", json={"kill_switch": True, "actor": "x", "reason": "y"},
                              timeout=10)
            assert r.status_code == 401  # never open, though the config named no token
            deadline = time.monotonic() + 20
            while True:
                p = cli(home, "router", "status", "ab")
                if p.returncode == 0:
                    break
                assert time.monotonic() < deadline, p.stdout + p.stderr
                time.sleep(0.2)
            assert "ready; stable arm v1" in p.stdout and "v2" in p.stdout
            p = cli(home, "router", "weights", "ab", "v1=50", "v2=50", "--reason", "even split", "--actor", "carol")
            assert p.returncode == 0 and "router.weights" in p.stdout, p.stderr
            p = cli(home, "router", "kill", "ab", "--reason", "v2 errors")
            assert p.returncode == 0, p.stderr
            with requests.Session() as s:
                assert {s.post(url + "/invocations", json=body(0.9), timeout=10).headers["x-mlops-arm"]
                        for _ in range(20)} == {"v1"}
            p = cli(home, "router", "changes", "ab", "--json")
            changes = json.loads(p.stdout)
            assert [(c["actor"], c["reason"]) for c in changes][0] == ("carol", "even split")
            assert changes[1]["reason"] == "v2 errors" and changes[1]["actor"]
            logged = audit.events(ws.db, kind_prefix="router.")
            assert [(e.kind, e.actor, e.reason) for e in logged] == [
                ("router.weights", "carol", "even split"), ("router.kill_switch", changes[1]["actor"], "v2 errors")]
            assert logged[0].details["router_hash"] == changes[0]["hash"]
            # bad input, in words
            p = cli(home, "router", "weights", "ab", "v1=lots", "--reason", "x")
            assert p.returncode == 2 and "'v1=lots' is not ARM=WEIGHT" in p.stderr
            p = cli(home, "router", "weights", "ab", "v1=1")
            assert p.returncode == 2 and "needs --reason" in p.stderr
            p = cli(home, "router", "weights", "ab", "v7=1", "--reason", "x")
            assert p.returncode == 2 and "no arm named v7" in p.stderr
            p = cli(home, "router", "status", "nope")
            assert p.returncode == 3 and "no managed router named 'nope'" in p.stderr
            p = cli(home, "router", "start", "ab", "--config", str(cfg))
            assert p.returncode == 2 and "already running" in p.stderr
            listed = json.loads(cli(home, "router", "list", "--json").stdout)
            assert [(r["name"], r["state"]) for r in listed] == [("ab", "running")]
        finally:
            p = cli(home, "router", "stop", "ab")
        assert p.returncode == 0 and "stopped" in p.stdout, p.stderr
        assert json.loads(cli(home, "router", "list", "--json").stdout)[0]["state"] == "stopped"
        # a restart resumes the live settings kept in its state folder
        assert cli(home, "router", "start", "ab", "--config", str(cfg)).returncode == 0
        r = router_manager.get(ws, "ab")
        try:
            with requests.Session() as s:
                assert {s.post(r.url + "/invocations", json=body(0.9), timeout=10).headers["x-mlops-arm"]
                        for _ in range(20)} == {"v1"}
            os.kill(r.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while router_manager.get(ws, "ab").state != "lost":
                assert time.monotonic() < deadline
                time.sleep(0.1)
        finally:
            if router_manager.get(ws, "ab").state == "running":
                router_manager.stop(ws, "ab")


def test_a_bad_config_is_refused_before_anything_starts(ws, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[arms]]\nname = "v1"\nweight = 1\nbackends = ["localhost"]\n')
    p = cli(ws.root, "router", "start", "x", "--config", str(cfg))
    assert p.returncode == 2 and "needs a host and a port" in p.stderr and "Traceback" not in p.stderr
    assert router_manager.list_routers(ws) == []
