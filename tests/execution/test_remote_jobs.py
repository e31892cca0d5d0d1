"""Jobs over SSH against the real sshd: stream logs and metrics, cancel, drop the connection and re-attach with
nothing lost or doubled, restart the app, a host that is down, hostile paths."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import time
from pathlib import Path

import pytest

from mlops_desktop.execution import Executor, JobRequest
from mlops_desktop.execution.errors import SshError
from mlops_desktop.execution.hosts import HostRegistry

pytestmark = pytest.mark.ssh

COUNTER = """
import sys, time, mlops_desktop.tracking as mt
n, pause = int(sys.argv[1]), float(sys.argv[2])
with mt.start_run() as run:
    for i in range(n):
        mt.log_metric("tick", time.time(), step=i)
        print(f"line {i} ü", flush=True)
        time.sleep(pause)
"""


def _project(tmp_path: Path) -> Path:
    proj = tmp_path / "my prój 'quoted' $(x)"
    proj.mkdir()
    (proj / "counter.py").write_text(COUNTER)
    return proj


def _expected(n: int) -> str:
    return "".join(f"line {i} ü\n" for i in range(n))


def test_remote_job_streams_logs_and_metrics(ssh_host, ws, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=["{python}", "counter.py", "{n}", "0.01"],
                                     params={"python": ssh_host.python, "n": "30"}, project_dir=str(proj)))
        got: list[bytes] = []
        [job] = ex.follow([job.id], on_log=lambda j, d: got.append(d))
    assert job.state == "succeeded" and job.exit_code == 0
    assert b"".join(got).decode() == _expected(30)
    assert (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text() == _expected(30)
    run = ws.tracking.get_run(job.run_uuid)
    assert run.status == "finished" and run.host == "box"
    hist = ws.tracking.metric_history(job.run_uuid, "tick")
    assert list(hist.steps) == list(range(30))
    # the remote job dir, under the hostile work dir, holds the log and the spool
    assert (Path(job.remote_dir) / "output.log").read_text() == _expected(30)
    assert (Path(job.remote_dir) / "spool.ndjson").exists()


def test_metrics_reach_the_local_store_within_a_second(ssh_host, ws, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "counter.py", "12", "0.25"],
                                     project_dir=str(proj)))
        [job] = ex.start_ready()
        lags: list[float] = []
        seen = 0
        while not job.is_final:
            job = ex.refresh(job)
            if "tick" in ws.tracking.metric_keys(job.run_uuid):
                hist = ws.tracking.metric_history(job.run_uuid, "tick")
                now = time.time()
                lags += [now - v for v in hist.values[seen:]]
                seen = len(hist.values)
            time.sleep(0.05)
    assert seen == 12
    assert statistics.median(lags) <= 1.0, lags
    assert max(lags) <= 2.0, lags


def test_cancel_kills_the_remote_process_group(ssh_host, ws, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    with Executor(ws, grace_s=3) as ex:
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "counter.py", "1000", "0.05"],
                                     project_dir=str(proj)))
        [job] = ex.start_ready()
        ex.follow([job.id], timeout=1.0)
        job = ex.cancel(job.id)
    assert job.state == "cancelled"
    assert ws.tracking.get_run(job.run_uuid).status == "killed"
    with pytest.raises(ProcessLookupError):
        os.killpg(job.pid, 0)  # the "remote" is this machine: the group is really gone
    log = (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text()
    assert log.startswith("line 0 ü\n") and log == (Path(job.remote_dir) / "output.log").read_text()


def test_dropped_connection_and_restart_lose_and_double_nothing(ssh_host, ws, sshd, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    n = 80
    got: list[bytes] = []
    ex = Executor(ws)
    [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "counter.py", str(n), "0.05"],
                                 project_dir=str(proj)))

    def stream_until(count: int) -> None:
        deadline = time.monotonic() + 15
        while len(b"".join(got).splitlines()) < count and time.monotonic() < deadline:
            ex.follow([job.id], on_log=lambda j, d: got.append(d), timeout=0.1)

    stream_until(5)
    # 1. the connection drops (killed on the server side): the next poll reconnects and goes on where it was
    for pid in sshd.connection_pids():
        os.kill(pid, signal.SIGKILL)
    before = len(b"".join(got).splitlines())
    stream_until(before + 5)
    assert len(b"".join(got).splitlines()) >= before + 5
    # 2. the host becomes unreachable: a clear error, and the job is still running there
    for pid in sshd.connection_pids():
        os.kill(pid, signal.SIGKILL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    HostRegistry(ws).update("box", port=dead_port)
    with pytest.raises(SshError, match="cannot reach host box|lost the connection to host box"):
        ex.follow([job.id], on_log=lambda j, d: got.append(d), reconnect=False, timeout=5)
    assert ex.jobs.get(job.id).state == "running"
    ex.close()  # 3. the app exits while the job runs on
    HostRegistry(ws).update("box", port=sshd.port)
    with Executor(ws) as again:  # 4. the app starts again: `jobs attach`
        [job] = again.follow([job.id], on_log=lambda j, d: got.append(d), from_start=False)
    assert job.state == "succeeded"
    assert b"".join(got).decode() == _expected(n)
    assert (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text() == _expected(n)
    hist = ws.tracking.metric_history(job.run_uuid, "tick")
    assert list(hist.steps) == list(range(n))
    assert job.log_offset == len(_expected(n).encode())


def test_two_processes_streaming_one_job_double_nothing(ssh_host, ws, tmp_path: Path) -> None:
    """The app and `jobs attach` follow the same job at once: each sees every line once, the copy is exact."""
    import threading

    from mlops_desktop.workspace import Workspace

    proj = _project(tmp_path)
    n = 60
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "counter.py", str(n), "0.02"],
                                     project_dir=str(proj)))
        [job] = ex.start_ready()
    outputs: list[list[bytes]] = [[], []]
    errors: list[BaseException] = []

    def follower(k: int) -> None:
        try:
            with Workspace.open(ws.root) as own, Executor(own) as ex:  # another "process": own connection, own DB
                ex.follow([job.id], on_log=lambda j, d: outputs[k].append(d), poll_s=0.01)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=follower, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for out in outputs:
        assert b"".join(out).decode() == _expected(n)
    assert (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text() == _expected(n)
    assert list(ws.tracking.metric_history(job.run_uuid, "tick").steps) == list(range(n))


def test_attach_resumes_from_a_torn_local_copy(ssh_host, ws, tmp_path: Path) -> None:
    """A crash between appending to the local copy and saving the offset: the extra bytes are dropped, not doubled."""
    proj = _project(tmp_path)
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "counter.py", "5", "0.01"],
                                     project_dir=str(proj)))
        [job] = ex.follow([job.id])
    mirror = Path(ws.paths.jobs) / str(job.id) / "output.log"
    ws.db.write(lambda c: c.execute("UPDATE jobs SET state = 'running', log_offset = 8 WHERE id = ?", (job.id,)))
    with mirror.open("ab") as fh:
        fh.write(b"garbage that was never acknowledged")
    with Executor(ws) as ex:
        [job] = ex.follow([job.id])
    assert mirror.read_text() == _expected(5)


def test_host_that_is_down_fails_the_job_cleanly(ws, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    HostRegistry(ws).add("down", hostname="127.0.0.1", port=port, user="nobody")
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="down", command=["true"], project_dir=""))
        [job] = ex.start_ready()
    assert job.state == "failed" and "cannot reach host down" in job.error
    assert ws.tracking.get_run(job.run_uuid).status == "failed"
    assert "cannot reach host down" in ws.tracking.get_run(job.run_uuid).tags["mlops.error"]


def test_hostile_params_reach_the_remote_command_verbatim(ssh_host, ws, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    (proj / "echo.py").write_text("import sys\nprint(repr(sys.argv[1:]))\n")
    nasty = "it's \"q\" $(touch /tmp/pwned-mlops) `id` ; ü\n"
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", kind="script", script="echo.py", params={"v": nasty},
                                     project_dir=str(proj)))
        [job] = ex.follow([job.id])
    assert job.state == "succeeded"
    out = (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text()
    assert out == repr([f"--v={nasty}"]) + "\n"
    assert not Path("/tmp/pwned-mlops").exists()


def test_unwritable_work_dir_fails_the_job_with_the_reason(ssh_host, ws, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    HostRegistry(ws).update("box", work_dir=str(blocked / "sub"))
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host="box", command=["true"], project_dir=""))
        [job] = ex.start_ready()
    assert job.state == "failed"
    assert "could not start on host box" in job.error and str(blocked) in job.error


def test_cancel_while_the_host_is_down_is_sent_when_it_is_back(ssh_host, ws, sshd, tmp_path: Path) -> None:
    proj = _project(tmp_path)
    with Executor(ws, grace_s=2) as ex:
        [job] = ex.submit(JobRequest(host="box", command=[ssh_host.python, "counter.py", "1000", "0.05"],
                                     project_dir=str(proj)))
        [job] = ex.start_ready()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    HostRegistry(ws).update("box", port=dead_port)
    with Executor(ws, grace_s=2) as ex, pytest.raises(SshError, match="cannot reach host box"):
        ex.cancel(job.id)
    assert ws.db.query("SELECT state, cancel_requested FROM jobs WHERE id = ?", (job.id,))[0] == ("running", 1)
    HostRegistry(ws).update("box", port=sshd.port)
    with Executor(ws, grace_s=2) as ex:
        [job] = ex.follow([job.id], timeout=30)  # e.g. `jobs attach`: the pending cancel goes out first
    assert job.state == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.killpg(job.pid, 0)
