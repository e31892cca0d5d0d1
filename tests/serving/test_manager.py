"""Managed servers: start detached, status, logs, restart with another version on the same port without refused
connections, state after our process restarts, stop, a killed server shown as lost, a failed start in words."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from mlops_desktop.cli.main import main
from mlops_desktop.errors import MlopsError, NotFoundError, UsageError
from mlops_desktop.serving import manager
from mlops_desktop.serving.source import Target
from mlops_desktop.workspace import Workspace

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ROW = {"dataframe_records": [{"age": 2, "income": 0.5, "city": "x", "member": False}]}


def resolver(ws, ref: str) -> Target:
    """MODEL/VERSION -> the test predictor (a stand-in for the registry's bundle folder, which is not built yet)."""
    model, _, version = ref.partition("/")
    factory = "serving_factories:nosuch" if model == "broken" else "serving_factories:echo"
    return Target(model, version, ("--factory", factory, "--name", model, "--version", version))


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), str(ROOT)]))


@pytest.fixture
def cleanup(ws):
    yield
    for server in manager.list_servers(ws):
        if server.state in ("running", "starting"):
            manager.stop(ws, server.name, timeout=10)


def test_detached_lifecycle(ws, cleanup, capsys):
    server = manager.start(ws, "echo/1", port=0, resolver=resolver, extra=["--max-batch", "32"])
    assert server.state == "running" and server.port > 0 and server.pid
    assert requests.get(server.url + "/version", timeout=5).json()["version"] == "1"
    assert requests.post(server.url + "/invocations", json=ROW, timeout=5).json() == {"predictions": [2.5]}
    with pytest.raises(UsageError, match="already running"):
        manager.start(ws, "echo/1", port=0, resolver=resolver)
    deadline = time.monotonic() + 10
    while "serving echo/1" not in manager.logs(ws, "echo"):
        assert time.monotonic() < deadline, manager.logs(ws, "echo")
        time.sleep(0.1)

    # restart with another version while a client keeps calling: no refused connection, answers switch over
    failures: list[str] = []
    versions: set[str] = set()
    stop = threading.Event()

    def client() -> None:
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(server.url + "/invocations", json=ROW, timeout=10)
                versions.add(requests.get(server.url + "/version", timeout=10).json()["version"])
                if r.status_code != 200:
                    failures.append(r.text)
            except requests.RequestException as exc:
                failures.append(repr(exc))
            time.sleep(0.01)

    t = threading.Thread(target=client)
    t.start()
    try:
        restarted = manager.restart(ws, "echo", "echo/2", resolver=resolver)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(30)
    assert not failures, failures[:3]
    assert restarted.port == server.port and restarted.pid != server.pid and restarted.version == "2"
    assert requests.get(server.url + "/version", timeout=5).json()["version"] == "2"
    assert "2" in versions
    assert "--max-batch" in restarted.argv  # options carried over
    assert not manager._alive(server.pid, server.pid_start)

    # our process "restarts": a new workspace object sees the same running server
    home = ws.root
    ws.close()
    again = Workspace.open(home)
    try:
        [seen] = manager.list_servers(again)
        assert (seen.state, seen.pid, seen.version) == ("running", restarted.pid, "2")
        assert main(["--home", str(home), "serve", "list", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert listed[0]["name"] == "echo" and listed[0]["state"] == "running"
        assert main(["--home", str(home), "serve", "logs", "echo", "-n", "5"]) == 0
        assert main(["--home", str(home), "serve", "stop", "echo"]) == 0
        assert "echo: stopped" in capsys.readouterr().out
        stopped = manager.get(again, "echo")
        assert stopped.state == "stopped" and stopped.exit_code == 0
        assert not manager._alive(restarted.pid, restarted.pid_start)
        events = [(e["event"], e["from_version"], e["to_version"]) for e in manager.events(again, "echo")]
        assert events == [("start", None, "1"), ("restart", "1", "2"), ("stop", "2", None)]
        assert main(["--home", str(home), "serve", "status", "echo"]) == 0
        assert "restart" in capsys.readouterr().out
    finally:
        again.close()
        ws.db.connect()  # the fixture closes the original object again


def test_a_killed_server_is_shown_as_lost(ws, cleanup):
    server = manager.start(ws, "echo/1", name="victim", port=0, resolver=resolver)
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while manager._alive(server.pid, server.pid_start):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    seen = manager.get(ws, "victim")
    assert seen.state == "lost" and "killed" in seen.error
    assert manager.events(ws, "victim")[-1]["event"] == "lost"
    # a lost server can be started again under its name
    again = manager.start(ws, "echo/1", name="victim", port=0, resolver=resolver)
    assert again.state == "running" and again.pid != server.pid


def test_a_failed_start_says_why_and_is_recorded(ws, cleanup):
    with pytest.raises(MlopsError, match="exited with code 2 while starting") as info:
        manager.start(ws, "broken/1", port=0, resolver=resolver)
    assert "cannot load the factory" in str(info.value)
    assert manager.get(ws, "broken").state == "failed"


def test_a_busy_port_is_refused_in_words(ws, cleanup):
    import socket

    with socket.socket() as other:  # someone else's listener (no SO_REUSEPORT)
        other.bind(("127.0.0.1", 0))
        other.listen()
        with pytest.raises(MlopsError, match="cannot listen on 127.0.0.1"):
            manager.start(ws, "echo/1", port=other.getsockname()[1], resolver=resolver)


def test_unknown_server_and_bad_cli_use(ws):
    with pytest.raises(NotFoundError, match="no managed server named 'nope'"):
        manager.stop(ws, "nope")
    assert main(["--home", str(ws.root), "serve", "stop"]) == 2
    assert main(["--home", str(ws.root), "serve", "stop", "nope"]) == 3
    assert main(["--home", str(ws.root), "serve", "m/1", "--host", "0.0.0.0"]) == 2  # noqa: S104
