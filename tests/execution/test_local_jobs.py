"""Jobs on this machine: environment, states, exit codes, cancel (TERM then KILL), lost jobs, queue, GPUs, sweeps."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from mlops_desktop.execution import Executor, JobRequest
from mlops_desktop.execution.errors import JobError
from mlops_desktop.execution.hosts import HostRegistry
from mlops_desktop.execution.models import Gpu, Inventory

PY = sys.executable


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a killed orphan may wait a moment for init to reap it)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3] != b"Z"


def test_job_gets_tracking_env_and_logs_into_its_run(ws, tmp_path: Path) -> None:
    code = ("import os, json, mlops_desktop.tracking as mt\n"
            "print(json.dumps({k: os.environ.get(k) for k in ('MLOPS_RUN_ID', 'MLOPS_DESKTOP_HOME', "
            "'CUDA_VISIBLE_DEVICES', 'PYTHONUNBUFFERED')}))\n"
            "print('pgid-is-own', os.getpgid(0) == os.getppid() or os.getpgid(0) == os.getpid())\n"
            "with mt.start_run() as r:\n"
            "    for i in range(5): mt.log_metric('loss', 1.0 / (i + 1), step=i)\n")
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=[PY, "-c", code], project_dir=str(tmp_path), experiment="exp"))
        assert job.state == "queued"
        chunks: list[bytes] = []
        [job] = ex.follow([job.id], on_log=lambda j, d: chunks.append(d))
    assert job.state == "succeeded" and job.exit_code == 0 and job.duration is not None and job.duration > 0
    lines = b"".join(chunks).decode().splitlines()
    env = json.loads(lines[0])
    assert env == {"MLOPS_RUN_ID": job.run_uuid, "MLOPS_DESKTOP_HOME": str(ws.root), "CUDA_VISIBLE_DEVICES": "",
                   "PYTHONUNBUFFERED": "1"}
    assert lines[1] == "pgid-is-own True"
    run = ws.tracking.get_run(job.run_uuid)
    assert run.status == "finished" and run.metrics["loss"].count == 5
    assert run.tags["mlops.job_id"] == str(job.id)
    assert ws.tracking.get_experiment(run.experiment_id).name == "exp"


def test_failing_job_records_exit_code_and_output(ws, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=["sh", "-c", "echo out; echo err >&2; exit 7"], project_dir=str(tmp_path)))
        [job] = ex.follow([job.id])
    assert (job.state, job.exit_code) == ("failed", 7)
    assert ws.tracking.get_run(job.run_uuid).status == "failed"
    log = (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text()
    assert log == "out\nerr\n"


def test_cancel_sends_term_to_the_whole_group(ws, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    # the job starts a grandchild; cancelling must stop both (process group)
    cmd = ["sh", "-c", f"sleep 60 & echo $! > '{marker}'; wait"]
    with Executor(ws, grace_s=5) as ex:
        [job] = ex.submit(JobRequest(command=cmd, project_dir=str(tmp_path)))
        ex.start_ready()
        _wait_for(marker.exists)
        child = int(marker.read_text())
        started = time.monotonic()
        job = ex.cancel(job.id)
        assert time.monotonic() - started < 4, "TERM was enough; no need to wait for the grace period"
    assert job.state == "cancelled" and job.cancel_requested
    assert ws.tracking.get_run(job.run_uuid).status == "killed"
    _wait_for(lambda: not _alive(child), timeout=3)


def test_cancel_kills_after_grace_when_term_is_ignored(ws, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = f"import signal, time, pathlib\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n" \
           f"pathlib.Path({str(ready)!r}).touch()\ntime.sleep(60)\n"
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=[PY, "-c", code], project_dir=str(tmp_path)))
        ex.start_ready()
        _wait_for(ready.exists)
        started = time.monotonic()
        job = ex.cancel(job.id, grace_s=0.5)
        took = time.monotonic() - started
    assert job.state == "cancelled" and 0.5 <= took < 5


def test_job_killed_from_outside_is_lost(ws, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=["sleep", "60"], project_dir=str(tmp_path)))
        [job] = ex.start_ready()
        os.killpg(job.pid, signal.SIGKILL)
        [job] = ex.follow([job.id], timeout=10)
    assert job.state == "lost" and "no exit code" in job.error
    assert ws.tracking.get_run(job.run_uuid).status == "lost"


def test_queue_respects_concurrency_and_priority(ws, tmp_path: Path) -> None:
    order = tmp_path / "order"
    with Executor(ws) as ex:
        jobs = []
        for name, prio in (("low", 0), ("high", 5), ("mid", 1)):
            jobs += ex.submit(JobRequest(command=["sh", "-c", f"echo {name} >> '{order}'; sleep 0.2"], priority=prio,
                                         project_dir=str(tmp_path), name=name))
        started = ex.start_ready()
        assert [j.name for j in started] == ["high"]  # local runs one job at a time by default
        assert sum(1 for j in ex.jobs.list() if j.state == "queued") == 2
        done = ex.follow([j.id for j in jobs])
    assert all(j.state == "succeeded" for j in done)
    assert order.read_text().split() == ["high", "mid", "low"]


def test_cancel_a_queued_job(ws, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        [a] = ex.submit(JobRequest(command=["sleep", "30"], project_dir=str(tmp_path)))
        [b] = ex.submit(JobRequest(command=["true"], project_dir=str(tmp_path)))
        ex.start_ready()
        b = ex.cancel(b.id)
        assert b.state == "cancelled" and b.run_uuid is None
        ex.cancel(a.id, grace_s=2)


def test_gpus_are_assigned_exclusively(ws, tmp_path: Path) -> None:
    reg = HostRegistry(ws)
    reg.update("local", max_jobs=4)
    # what `hosts inspect` records on a machine with two GPUs (this one has none)
    reg.save_inventory("local", Inventory(cpus=2, gpus=[Gpu(0, "GPU-0", "NVIDIA H200"), Gpu(1, "GPU-1", "NVIDIA H200")],
                                          collected_at=time.time()))
    with Executor(ws) as ex:
        with pytest.raises(JobError, match="has 2 GPU\\(s\\); the job asks for 3"):
            ex.submit(JobRequest(command=["true"], gpus=3, project_dir=str(tmp_path)))
        jobs = [ex.submit(JobRequest(command=["sh", "-c", "echo $CUDA_VISIBLE_DEVICES; sleep 0.5"], gpus=1,
                                     project_dir=str(tmp_path)))[0] for _ in range(3)]
        started = ex.start_ready()
        assert sorted(j.gpu_ids for j in started) == ["0", "1"]
        assert ex.jobs.get(jobs[2].id).state == "queued"  # waits for a free GPU
        done = ex.follow([j.id for j in jobs])
    assert all(j.state == "succeeded" for j in done)
    seen = [(Path(ws.paths.jobs) / str(j.id) / "output.log").read_text().strip() for j in done]
    assert sorted(seen[:2]) == ["0", "1"] and seen[2] in ("0", "1")


def test_sweep_creates_child_runs_under_a_parent(ws, tmp_path: Path) -> None:
    code = "import sys, mlops_desktop.tracking as mt\nwith mt.start_run():\n" \
           "    mt.log_metric('score', float(sys.argv[1]) * float(sys.argv[2]))\n"
    HostRegistry(ws).update("local", max_jobs=2)
    with Executor(ws) as ex:
        jobs = ex.submit(JobRequest(command=[PY, "-c", code, "{a}", "{b}"], sweep="grid:a=1,2;b=10,20",
                                    project_dir=str(tmp_path), experiment="sweep"))
        assert len(jobs) == 4 and len({j.parent_run_uuid for j in jobs}) == 1
        done = ex.follow([j.id for j in jobs])
    parent = ws.tracking.get_run(jobs[0].parent_run_uuid)
    assert parent.status == "finished" and parent.tags["mlops.sweep_size"] == "4"
    children = [ws.tracking.get_run(j.run_uuid) for j in done]
    assert all(c.parent_uuid == parent.uuid for c in children)
    assert sorted(c.metrics["score"].last for c in children) == [10, 20, 20, 40]
    assert sorted((c.params["a"], c.params["b"]) for c in children) == [("1", "10"), ("1", "20"), ("2", "10"),
                                                                        ("2", "20")]


def test_bad_submissions_are_refused_clearly(ws, tmp_path: Path) -> None:
    with Executor(ws) as ex:
        with pytest.raises(JobError, match="project directory .*nope does not exist"):
            ex.submit(JobRequest(command=["true"], project_dir=str(tmp_path / "nope")))
        with pytest.raises(JobError, match="script .*missing.py does not exist"):
            ex.submit(JobRequest(kind="script", script="missing.py", project_dir=str(tmp_path)))
        with pytest.raises(JobError, match="no command given"):
            ex.submit(JobRequest(command=[], project_dir=str(tmp_path)))
        from mlops_desktop.execution.errors import HostNotFoundError

        with pytest.raises(HostNotFoundError):
            ex.submit(JobRequest(host="nowhere", command=["true"], project_dir=str(tmp_path)))
    assert ex.jobs.list() == []


def test_gpu_busy_with_someone_elses_process_is_skipped(ws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A FAKE nvidia-smi (this machine has no GPU) reporting two H200s, the first one running a foreign process."""
    fixtures = Path(__file__).parent / "fixtures"
    real = (fixtures / "nvidia-smi-query-gpu-noheader-nounits.csv").read_text()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gpus.csv").write_text(real + real.replace("0, GPU-a05e", "1, GPU-b05e"))
    (bin_dir / "nvidia-smi").write_text(f"""#!/bin/sh
case "$1" in
  --query-gpu=*) cat '{bin_dir}/gpus.csv' ;;
  --query-compute-apps=*) echo 'GPU-a05e227c-9245-8f05-33b8-2ce227c9f028, 4242, someone_else.py, 80000' ;;
esac
""")
    (bin_dir / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(command=["sh", "-c", "echo $CUDA_VISIBLE_DEVICES"], gpus=1,
                                     project_dir=str(tmp_path)))
        [job] = ex.follow([job.id])
    assert job.state == "succeeded" and job.gpu_ids == "1"
    assert (Path(ws.paths.jobs) / str(job.id) / "output.log").read_text() == "1\n"
