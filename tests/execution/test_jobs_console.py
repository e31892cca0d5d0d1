"""Console and SSH jobs as a new user meets them: which folder is synced (project root, excludes, every .gitignore,
the size limit), `jobs list` telling the state as of the last contact, the duration of SSH jobs, and the run of a
failed job saying why (exit code, exception, output tail). SSH tests use the real private sshd."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from mlops_desktop.cli.main import main
from mlops_desktop.execution import Executor, JobRequest
from mlops_desktop.execution.projects import SyncTooLargeError, choose
from mlops_desktop.execution.sync import estimate, scan

FAILING = """
import sys
print("epoch 1 loss 0.9", flush=True)
print("epoch 2 loss 0.7", flush=True)
raise ValueError("learning rate must be positive, got -0.1")
"""


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


# ------------------------------------------------------------------------------------------ which folder is synced
def test_project_root_is_found_by_mlops_toml_then_git(tmp_path: Path) -> None:
    proj = _tree(tmp_path / "proj", {"mlops.toml": "", "src/train/x.py": "", "src/.git/HEAD": ""})
    choice = choose(None, str(proj / "src" / "train"))
    assert (choice.root, choice.how, choice.subdir) == (proj, "mlops.toml", "src/train")  # mlops.toml beats git
    repo = _tree(tmp_path / "repo", {".git/HEAD": "", "a/b/x.py": ""})
    choice = choose(None, str(repo / "a" / "b"))
    assert (choice.root, choice.how, choice.subdir) == (repo, "git", "a/b")
    loose = _tree(tmp_path / "loose", {"x.py": ""})
    assert (choose(None, str(loose)).root, choose(None, str(loose)).how) == (loose, "current folder")
    given = choose(str(loose), str(repo))
    assert (given.root, given.how, given.subdir, given.explicit) == (loose, "given", "", True)
    assert choose("", str(repo)) is None


def test_sync_leaves_out_environments_caches_and_every_gitignored_file(tmp_path: Path) -> None:
    root = _tree(tmp_path / "p", {
        "train.py": "", "data/small.csv": "a\n",
        ".git/objects/aa": "x", "__pycache__/m.pyc": "x", ".venv/lib/x.py": "", "node_modules/m/i.js": "",
        "my-env/pyvenv.cfg": "home = /usr", "my-env/lib/site.py": "",  # a venv under any name
        "conda/conda-meta/history": "", "conda/bin/python": "",
        ".pytest_cache/v": "", ".mypy_cache/x": "", ".tox/py/x": "",
        ".gitignore": "*.log\noutputs/\n",
        "run.log": "x", "outputs/model.bin": "x",
        "sub/.gitignore": "*.bin\n!keep.bin\n/local-only/\n",  # applies inside sub/ only
        "sub/w.bin": "x", "sub/keep.bin": "x", "sub/deep/w2.bin": "x", "sub/local-only/f.txt": "x",
        "sub/deep/local-only/g.txt": "x", "top.bin": "x",
        "sub/deeper/.mlopsignore": "secret.txt\n", "sub/deeper/secret.txt": "x", "sub/deeper/ok.txt": "x",
    })
    got = sorted(f.rel for f in scan(root))
    assert got == [".gitignore", "data/small.csv", "sub/.gitignore", "sub/deep/local-only/g.txt",
                   "sub/deeper/.mlopsignore", "sub/deeper/ok.txt", "sub/keep.bin", "top.bin", "train.py"]
    est = estimate(root)
    assert (est.files, est.complete) == (len(got), True)


@pytest.mark.ssh
def test_a_large_folder_is_refused_until_named_or_confirmed(ws, ssh_host, tmp_path: Path) -> None:
    folder = _tree(tmp_path / "downloads", {"train.py": "print('hi')\n"})
    with open(folder / "dataset.bin", "wb") as fh:
        fh.truncate(600 << 20)  # sparse: 600 MB by its size, nothing written
    shown: list[str] = []
    with Executor(ws) as ex, pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        with pytest.raises(SyncTooLargeError) as info:
            ex.submit(JobRequest(host="box", command=["true"]), on_plan=lambda plan: shown.append(plan.describe()))
        message = str(info.value)
        assert "2 files" in message and "600.0 MB" in message and "dataset.bin (600.0 MB)" in message
        assert "current folder" in message and "--project DIR" in info.value.hint and "--yes" in info.value.hint
        assert shown and "2 files" in shown[0]
        assert ex.jobs.list() == []  # nothing queued
        # a .mlopsignore that leaves the data out is enough
        (folder / ".mlopsignore").write_text("*.bin\n")
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "train.py"]))
        [job] = ex.follow([job.id], timeout=60)
    assert job.state == "succeeded"
    assert not (Path(job.remote_dir) / "src" / "dataset.bin").exists()
    assert (Path(job.remote_dir) / "src" / "train.py").exists()


@pytest.mark.ssh
def test_limits_come_from_mlops_toml_and_give_way_to_project_or_yes(ws, ssh_host, tmp_path: Path) -> None:
    proj = _tree(tmp_path / "proj", {"mlops.toml": "[jobs]\nmax_sync_mb = 1\n", "code/run.py": "import os\n"
                                     "print(os.getcwd().endswith('code'))\n", "blob.dat": b"x" * (2 << 20)})
    with Executor(ws) as ex, pytest.MonkeyPatch.context() as mp:
        mp.chdir(proj / "code")
        with pytest.raises(SyncTooLargeError, match=r"found by its mlops.toml.*above the limit of 1.0 MB"):
            ex.submit(JobRequest(host="box", command=[ssh_host.python, "run.py"]))
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "run.py"], confirm_sync=True))
        [job] = ex.follow([job.id], timeout=60)
        assert job.state == "succeeded" and job.work_subdir == "code"
        log = (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text()
        assert log == "True\n"  # it ran in the copy of the folder it was submitted from
        [named] = ex.submit(JobRequest(host="box", command=["true"], project_dir=str(proj)))
        assert named.project_dir == str(proj) and named.work_subdir == ""


@pytest.mark.ssh
def test_cli_shows_size_before_syncing_and_refuses_above_the_limit(capsys, sshd, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    home = str(tmp_path / "ws")
    assert main(["--home", home, "hosts", "add", "box", "--hostname", "127.0.0.1", "--port", str(sshd.port),
                 "--user", sshd.user, "--identity-file", str(sshd.client_key), "--python", sys.executable,
                 "--work-dir", str(tmp_path / "remote"), "--accept-new-host-key"]) == 0
    capsys.readouterr()
    folder = _tree(tmp_path / "tmpdir", {"a.txt": "hello\n"})
    with open(folder / "big.iso", "wb") as fh:
        fh.truncate(3 << 30)
    monkeypatch.chdir(folder)
    code, _, err = run_cli(capsys, "--home", home, "jobs", "submit", "--host", "box", "--", "cat", "a.txt")
    assert code == 2 and "not syncing" in err and "above the limit" in err and "Traceback" not in err
    assert "2 files" in err and "3.0 GB" in err
    (folder / "big.iso").unlink()
    code, _, err = run_cli(capsys, "--home", home, "jobs", "submit", "--host", "box", "--follow", "--", "cat",
                           "a.txt")
    assert code == 0, err
    assert "project " + str(folder) in err and "1 files, 6 B to sync to host box" in err


# ------------------------------------------------------------------------------------------ why a job failed
def _assert_failure_tags(ws, job) -> None:
    run = ws.tracking.get_run(job.run_uuid)
    assert run.status == "failed"
    assert run.tags["mlops.error.exit_code"] == "1"
    tail = run.tags["mlops.error.output_tail"]
    assert tail.startswith("epoch 1 loss 0.9\nepoch 2 loss 0.7\nTraceback") and tail.endswith(
        "ValueError: learning rate must be positive, got -0.1")
    assert run.tags["mlops.error"] == "the job exited with code 1: ValueError: learning rate must be positive, got -0.1"


def test_a_failed_local_job_records_why_in_its_run(ws, tmp_path: Path) -> None:
    proj = _tree(tmp_path / "p", {"fail.py": FAILING})
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(kind="script", script="fail.py", project_dir=str(proj)))
        [job] = ex.follow([job.id], timeout=60)
    assert (job.state, job.exit_code) == ("failed", 1)
    _assert_failure_tags(ws, job)


@pytest.mark.ssh
def test_a_failed_ssh_job_records_why_in_its_run(ws, ssh_host, tmp_path: Path) -> None:
    proj = _tree(tmp_path / "p", {"fail.py": FAILING})
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", kind="script", script="fail.py", project_dir=str(proj)))
        [job] = ex.follow([job.id], timeout=60)
    assert (job.state, job.exit_code) == ("failed", 1)
    _assert_failure_tags(ws, job)


def test_output_tail_keeps_the_last_40_lines_within_8_kb(ws, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=["sh", "-c", "i=0; while [ $i -lt 500 ]; do echo line $i; "
                                                          "i=$((i+1)); done; exit 3"], project_dir=str(tmp_path)))
        [job] = ex.follow([job.id], timeout=60)
    tags = ws.tracking.get_run(job.run_uuid).tags
    lines = tags["mlops.error.output_tail"].splitlines()
    assert lines == [f"line {i}" for i in range(460, 500)]
    assert tags["mlops.error"] == "the job exited with code 3; its last output: line 499"
    assert tags["mlops.error.exit_code"] == "3"


def test_a_summary_written_by_the_job_itself_is_kept(ws, tmp_path: Path) -> None:
    script = _tree(tmp_path / "p", {"own.py": "import mlops_desktop.tracking as mt\n"
                                              "with mt.start_run():\n"
                                              "    mt.set_tag('mlops.error', 'KeyError: column price is missing')\n"
                                              "raise SystemExit(2)\n"})
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(kind="script", script="own.py", project_dir=str(script)))
        [job] = ex.follow([job.id], timeout=60)
    tags = ws.tracking.get_run(job.run_uuid).tags
    assert tags["mlops.error"] == "KeyError: column price is missing" and tags["mlops.error.exit_code"] == "2"


# ------------------------------------------------------------------------------------------ SSH job timing and list
@pytest.mark.ssh
def test_a_finished_ssh_job_has_its_real_duration(ws, ssh_host, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=["sleep", "0.6"], project_dir=""))
        [job] = ex.follow([job.id], timeout=60)
    assert job.state == "succeeded"
    assert 0.5 <= job.duration < 5.0, job.duration


@pytest.mark.ssh
def test_jobs_list_asks_ssh_hosts_by_default(capsys, ws, ssh_host, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=["sleep", "0.3"], project_dir=""))
        [job] = ex.start_ready()
    deadline = time.monotonic() + 30
    while not (Path(job.remote_dir) / "exit_code").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    code, out, err = run_cli(capsys, "--home", str(ws.root), "jobs", "list", "--json")
    assert code == 0, err
    [listed] = json.loads(out)
    assert listed["state"] == "succeeded" and listed["duration"] > 0.25


def _silent_server() -> tuple[socket.socket, threading.Event]:
    """A TCP port that accepts connections and never says a word (a host that hangs, not one that refuses)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue
        for conn in held:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server, stop


@pytest.mark.ssh
def test_a_host_that_does_not_answer_is_marked_not_waited_for(capsys, ws, ssh_host, tmp_path: Path) -> None:
    from mlops_desktop.execution.hosts import HostRegistry
    from mlops_desktop.execution.jobstore import JobStore

    server, stop = _silent_server()
    try:
        HostRegistry(ws).add("hung", hostname="127.0.0.1", port=server.getsockname()[1], user="x")
        store = JobStore(ws)
        stale = store.add(host="hung", kind="command", argv=["sleep", "100"], name="on a hung host")
        contact = time.time() - 7200
        store.update(stale.id, state="running", pid=4242, remote_dir="/nowhere", started_at=contact - 60,
                     last_contact_at=contact)
        with Executor(ws) as ex:  # a live job on the real sshd beside it is refreshed as usual
            [live] = ex.submit(JobRequest(host="box", command=["sleep", "30"], project_dir=""))
            [live] = ex.start_ready()
        started = time.monotonic()
        code, out, err = run_cli(capsys, "--home", str(ws.root), "jobs", "list", "--timeout", "1", "--json")
        elapsed = time.monotonic() - started
        assert code == 0 and elapsed < 6, elapsed
        jobs = {j["id"]: j for j in json.loads(out)}
        assert jobs[stale.id]["state"] == "running" and jobs[stale.id]["host_answered"] is False
        assert 7100 < jobs[stale.id]["contact_age"] < 7300
        assert jobs[live.id]["host_answered"] is True and jobs[live.id]["contact_age"] < 5
        assert "host hung" in err and "did not answer" in err
        code, out, err = run_cli(capsys, "--home", str(ws.root), "jobs", "list", "--timeout", "1")
        row = next(line for line in out.splitlines() if line.startswith(f"{stale.id} "))
        assert "2h 00m ago (host not answering)" in row or "2h 01m ago (host not answering)" in row
        assert HostRegistry(ws).get("hung").contact_error
        assert HostRegistry(ws).get("box").last_contact_at > time.time() - 30
        with Executor(ws) as ex:
            ex.cancel(live.id, grace_s=1)
    finally:
        stop.set()
        server.close()
