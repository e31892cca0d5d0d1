"""The hosts and jobs commands, run in-process against real workspaces (and the real sshd)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_desktop.cli.main import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_hosts_commands_against_sshd(capsys, sshd, tmp_path: Path) -> None:
    home = str(tmp_path / "ws")
    base = ["--home", home, "hosts"]
    code, _, err = run_cli(capsys, *base, "add", "box", "--hostname", "127.0.0.1", "--port", str(sshd.port),
                           "--user", sshd.user, "--identity-file", str(sshd.client_key), "--python", sys.executable)
    fp = subprocess.run(["ssh-keygen", "-lf", str(sshd.host_key_pub)], capture_output=True, text=True).stdout.split()[1]
    assert code == 1 and fp in err and "--accept-new-host-key" in err
    code, out, err = run_cli(capsys, *base, "inspect", "box", "--accept-new-host-key", "--json")
    assert code == 0, err
    inv = json.loads(out)
    assert inv["cpus"] >= 1 and inv["python"]
    code, out, _ = run_cli(capsys, *base, "list", "--json")
    hosts = {h["name"]: h for h in json.loads(out)}
    assert set(hosts) == {"local", "box"} and hosts["box"]["inventory"]["cpus"] == inv["cpus"]
    code, out, _ = run_cli(capsys, *base, "list")
    assert out.splitlines()[0].split()[:3] == ["NAME", "KIND", "ADDRESS"] and "box" in out
    code, _, err = run_cli(capsys, *base, "inspect", "nothere")
    assert code == 3 and "no host named 'nothere'" in err
    code, _, _ = run_cli(capsys, *base, "remove", "box")
    assert code == 0
    code, out, _ = run_cli(capsys, *base, "list", "--json")
    assert [h["name"] for h in json.loads(out)] == ["local"]


def test_import_ssh_config_command(capsys, tmp_path: Path) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host a1\n  HostName 10.0.0.1\n  User u\n  Port 2201\nHost *\n  User x\n")
    code, out, err = run_cli(capsys, "--home", str(tmp_path / "ws"), "hosts", "import-ssh-config", "--file", str(cfg))
    assert code == 0 and "a1" in out and "u@10.0.0.1:2201" in out and "1 host(s) imported" in err


def test_jobs_submit_follow_list_logs(capsys, tmp_path: Path) -> None:
    home = str(tmp_path / "ws")
    code, out, err = run_cli(capsys, "--home", home, "jobs", "submit", "--project", str(tmp_path), "--follow",
                             "--param", "who=wörld", "--", "sh", "-c", "echo hello {who}; exit 4")
    assert code == 1 and out == "hello wörld\n" and "job 1: failed (exit 4)" in err
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "list", "--json")
    [job] = json.loads(out)
    assert (job["state"], job["exit_code"], job["params"]) == ("failed", 4, {"who": "wörld"})
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "logs", "1")
    assert code == 0 and out == "hello wörld\n"
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "show", "1")
    assert "exit_code" in out and "failed" in out
    code, _, err = run_cli(capsys, "--home", home, "jobs", "logs", "99")
    assert code == 3 and "no job 99" in err
    code, _, err = run_cli(capsys, "--home", home, "jobs", "submit", "--project", str(tmp_path))
    assert code == 2 and "nothing to run" in err


def test_jobs_sweep_work_and_cancel(capsys, tmp_path: Path) -> None:
    home = str(tmp_path / "ws")
    code, out, err = run_cli(capsys, "--home", home, "jobs", "submit", "--project", str(tmp_path), "--json",
                             "--sweep", "grid:n=1,2,3", "--", "sh", "-c", "echo n={n}")
    jobs = json.loads(out)
    assert code == 0 and len(jobs) == 3 and [j["state"] for j in jobs].count("queued") == 2
    code, _, err = run_cli(capsys, "--home", home, "jobs", "work", "--poll", "0.05")
    assert code == 0 and err.count("succeeded") >= 2
    for j in jobs:
        _, out, _ = run_cli(capsys, "--home", home, "jobs", "logs", str(j["id"]))
        assert out == f"n={j['params']['n']}\n"
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "submit", "--project", str(tmp_path), "--json",
                           "--", "sleep", "30")
    [job] = json.loads(out)
    assert job["state"] == "running"
    started = time.monotonic()
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "cancel", str(job["id"]), "--grace", "2")
    assert code == 0 and "cancelled" in out and time.monotonic() - started < 5
    code, _, err = run_cli(capsys, "--home", home, "jobs", "attach", str(job["id"]))
    assert code == 1 and "already ended: cancelled" in err


@pytest.mark.ssh
def test_remote_submit_follow_and_attach(capsys, ssh_host, ws, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "t.py").write_text("import time\nfor i in range(3):\n    print('remote', i)\n    time.sleep(0.05)\n")
    home = str(ws.root)
    code, out, err = run_cli(capsys, "--home", home, "jobs", "submit", "--host", "box", "--project", str(proj),
                             "--script", "t.py", "--follow")
    assert code == 0, err
    assert out == "remote 0\nremote 1\nremote 2\n" and "succeeded" in err
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "logs", "1")
    assert out == "remote 0\nremote 1\nremote 2\n"


@pytest.mark.ssh
def test_remote_attach_and_logs_follow(capsys, ssh_host, ws, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "t.py").write_text("import time\nfor i in range(20):\n    print('line', i, flush=True)\n"
                               "    time.sleep(0.05)\n")
    home = str(ws.root)
    code, out, err = run_cli(capsys, "--home", home, "jobs", "submit", "--host", "box", "--project", str(proj),
                             "--script", "t.py", "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "running", err
    code, out, err = run_cli(capsys, "--home", home, "jobs", "attach", "1")
    assert code == 0 and out == "".join(f"line {i}\n" for i in range(20)) and "succeeded" in err
    code, out, _ = run_cli(capsys, "--home", home, "jobs", "logs", "1", "--tail", "2")
    assert out == "line 18\nline 19\n"
