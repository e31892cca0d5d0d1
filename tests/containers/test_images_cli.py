"""The images commands: help, JSON, errors in words with their exit codes, and (on the real engine) a build whose
log streams live and that Ctrl-C cancels without leaving a tagged image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlops_desktop.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_every_images_command_has_help(capsys):
    for name in ("build", "smoke", "push", "list", "show"):
        with pytest.raises(SystemExit) as done:
            main(["images", name, "--help"])
        assert done.value.code == 0
        assert "--json" in capsys.readouterr().out


def test_list_and_show_without_images(capsys, ws):
    code, out, _ = _run(capsys, "images", "list", "--home", str(ws.root))
    assert code == 0 and "no images built yet" in out
    code, out, _ = _run(capsys, "images", "list", "--json", "--home", str(ws.root))
    assert code == 0 and json.loads(out) == []
    code, _, err = _run(capsys, "images", "show", "churn:1", "--home", str(ws.root))
    assert code == 3 and "no image 'churn:1' was built in this workspace" in err and "Traceback" not in err


def test_errors_are_words_with_exit_codes(capsys, ws, churn_version, tmp_path):
    home = str(ws.root)
    code, _, err = _run(capsys, "images", "build", "churn/9", "--home", home)
    assert code == 3 and "churn" in err and "Traceback" not in err
    code, _, err = _run(capsys, "images", "build", "churn/1", "--tag", "Bad Tag", "--home", home)
    assert code == 2 and "invalid tag 'Bad Tag'" in err
    code, _, err = _run(capsys, "images", "build", "churn/1", "--docker-host", f"unix://{tmp_path}/none.sock",
                        "--home", home)
    assert code == 4 and "cannot reach the Docker engine" in err and "start dockerd" in err
    code, _, err = _run(capsys, "images", "push", "x:1", "--registry", "http://127.0.0.1:5000", "--home", home)
    assert code == 3 and "no image 'x:1'" in err  # the image is looked up first


@pytest.mark.docker
def test_build_streams_the_log_and_ctrl_c_cancels_cleanly(ws, churn_version, docker_engine, docker_scope,
                                                          deps_repository):
    ws.close()
    tag = f"{docker_scope.name('cli')}:1"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DOCKER_HOST": docker_engine.host, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mlops_desktop", "images", "build", churn_version.ref, "--tag", tag,
           "--base", docker_engine.base_image, "--home", str(ws.root)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:  # the log arrives line by line while the build runs
        lines.append(line)
        if line.startswith("Step ") or "packages:" in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (lines, out, err)
    assert "cancelling the build" in err and "nothing was tagged" in err and "Traceback" not in err
    time.sleep(0.5)
    assert not [t for image in docker_engine.client().images.list() for t in image.tags if t == tag]


@pytest.mark.docker
def test_build_json_then_list(capsys, ws, churn_version, build, docker_engine):
    record = build(churn_version.ref)
    code, out, _ = _run(capsys, "images", "list", "--json", "--home", str(ws.root))
    assert code == 0
    [row] = json.loads(out)
    assert row["tag"] == record.tag and row["size_bytes"] == record.size_bytes and row["ref"] == churn_version.ref
    code, out, _ = _run(capsys, "images", "show", record.tag, "--home", str(ws.root))
    assert code == 0 and record.image_id in out and "prediction log on" in out
