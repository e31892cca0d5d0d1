"""`targets` and `deploy` on the command line: plain words and exit codes for bad input, --json for scripts, and a
real deployment on the local engine driven only through the CLI."""

from __future__ import annotations

import json

from mlops_desktop.cli.main import main


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bad_input_is_refused_in_words(ws, capsys):
    home = str(ws.root)
    code, _, err = _run(capsys, "--home", home, "targets", "add", "Bad_Name", "--local")
    assert code == 2 and "invalid target name 'Bad_Name'" in err and "Traceback" not in err
    code, _, err = _run(capsys, "--home", home, "targets", "add", "s1", "--swarm", "tcp://x:1;reboot")
    assert code == 2 and "invalid Docker host" in err
    code, _, err = _run(capsys, "--home", home, "targets", "add", "l1", "--local", "--namespace", "x")
    assert code == 2 and "--kubernetes" in err
    code, _, err = _run(capsys, "--home", home, "deploy", "status", "nope")
    assert code == 3 and "no deployment named 'nope'" in err
    code, _, err = _run(capsys, "--home", home, "deploy", "create", "api", "--target", "nowhere", "--model", "m/1")
    assert code == 3 and "no deploy target named 'nowhere'" in err
    code, _, err = _run(capsys, "--home", home, "deploy", "split", "api", "churn/1:90")
    assert code in (2, 3)
    code, out, _ = _run(capsys, "--home", home, "--json", "targets", "list")
    assert code == 0 and json.loads(out) == []


def test_a_deployment_through_the_cli_only(ws, capsys, docker_scope, churn_versions, tiny_images):
    home, name = str(ws.root), docker_scope.prefix
    labels = json.dumps(docker_scope.labels)
    code, out, err = _run(capsys, "--home", home, "targets", "add", "here", "--local", "--docker-host",
                          docker_scope.engine.host, "--option", f"labels={labels}")
    assert code == 0, err
    code, out, _ = _run(capsys, "--home", home, "targets", "check", "here", "--json")
    assert code == 0 and json.loads(out)[0]["reachable"] is True
    code, out, err = _run(capsys, "--home", home, "deploy", "create", name, "--target", "here", "--model", "churn/1",
                          "--image", tiny_images["v1"], "--replicas", "2", "--reason", "first", "--json")
    assert code == 0, err
    rev = json.loads(out)
    assert rev["outcome"] == "healthy" and rev["number"] == 1 and rev["reason"] == "first"
    code, out, _ = _run(capsys, "--home", home, "deploy", "status", name, "--json")
    st = json.loads(out)
    assert code == 0 and st["state"] == "healthy" and st["ready"] == 2 and len(st["replicas"]) == 2
    assert st["recent_events"] and "outcome" in {e["kind"] for e in st["recent_events"]}
    code, out, _ = _run(capsys, "--home", home, "deploy", "status", name)
    assert "healthy - 2/2 ready" in out
    code, out, err = _run(capsys, "--home", home, "deploy", "update", name, "--model", "churn/2", "--image",
                          tiny_images["crash"], "--deadline", "20")
    assert code == 1 and "rolled_back" in out, out + err
    code, out, _ = _run(capsys, "--home", home, "deploy", "history", name)
    assert "rolled_back" in out and "* 1" in out
    code, out, _ = _run(capsys, "--home", home, "deploy", "logs", name)
    assert code == 0 and "tiny server version 1" in out
    code, out, _ = _run(capsys, "--home", home, "--json", "deploy", "endpoints", name)
    assert [e["role"] for e in json.loads(out)] == ["replica", "replica"]
    code, out, _ = _run(capsys, "--home", home, "deploy", "list", "--json")
    assert json.loads(out)[0]["current_revision"] == 1
    code, out, _ = _run(capsys, "--home", home, "deploy", "delete", name, "--reason", "done")
    assert code == 0 and "history is kept" in out
