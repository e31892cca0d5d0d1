"""Execution benchmark: job start latency (local, SSH), remote metric lag, SFTP project sync; each figure beside
its baseline measured in the same run (raw Popen, raw paramiko exec, a tar stream over SSH).

    python benchmarks/jobs.py            # needs /usr/sbin/sshd (apt-get install openssh-server)
    python benchmarks/jobs.py --quick

Starts a private sshd on 127.0.0.1 (own host key, own authorized_keys, in a temp dir). Prints a line per figure and,
last, one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import getpass
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_desktop.execution import Executor, JobRequest  # noqa: E402
from mlops_desktop.execution.hosts import HostRegistry  # noqa: E402
from mlops_desktop.execution.ssh import connect  # noqa: E402
from mlops_desktop.execution.sync import sync_dir  # noqa: E402
from mlops_desktop.workspace import Workspace  # noqa: E402

SSHD = "/usr/sbin/sshd"


def say(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"{name:<44} {value:>12,.2f} {unit:<6} {note}", flush=True)


def start_sshd(d: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    for key in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)], check=True)
    shutil.copy(d / "client.pub", d / "authorized_keys")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile {d}/pid\nAuthorizedKeysFile "
        f"{d}/authorized_keys\nStrictModes no\nPubkeyAuthentication yes\nPasswordAuthentication no\nUsePAM no\n"
        f"MaxSessions 50\nSubsystem sftp internal-sftp\n")
    proc = subprocess.Popen([SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(d / "log")])
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port, d / "client"


def wait_running(ex: Executor, job_id: int) -> float:
    job = ex.jobs.get(job_id)
    return job.started_at or 0.0


def local_start(ws: Workspace, project: Path, reps: int) -> tuple[float, float, float]:
    """(our submit->process running, our submit->first output line, raw Popen->first output line) medians, ms."""
    ours_spawn, ours_first, raw_first = [], [], []
    with Executor(ws) as ex:
        for _ in range(reps):
            t = time.perf_counter()
            [job] = ex.submit(JobRequest(command=["sh", "-c", "echo ready"], project_dir=str(project)))
            ex.start_ready()
            ours_spawn.append(time.perf_counter() - t)
            seen: list[float] = []

            def first_output(_job: object, _data: bytes, seen: list[float] = seen) -> None:
                if not seen:
                    seen.append(time.perf_counter())

            ex.follow([job.id], on_log=first_output, poll_s=0.001, run_queue=False)
            ours_first.append(seen[0] - t)
            t = time.perf_counter()
            p = subprocess.Popen(["sh", "-c", "echo ready"], stdout=subprocess.PIPE)
            p.stdout.readline()
            raw_first.append(time.perf_counter() - t)
            p.wait()
            p.stdout.close()
    return (statistics.median(ours_spawn) * 1e3, statistics.median(ours_first) * 1e3,
            statistics.median(raw_first) * 1e3)


def ssh_start(ws: Workspace, project: Path, reps: int) -> tuple[float, float, float]:
    """(first job incl. connect + shipping the client, warm submit->running, raw exec of `true`) ms."""
    host = HostRegistry(ws).get("box")
    with Executor(ws) as ex:
        t = time.perf_counter()
        [job] = ex.submit(JobRequest(host="box", command=["true"], project_dir=str(project)))
        ex.start_ready()
        cold = time.perf_counter() - t
        ex.follow([job.id], poll_s=0.02)
        warm = []
        for _ in range(reps):
            t = time.perf_counter()
            [job] = ex.submit(JobRequest(host="box", command=["true"], project_dir=str(project)))
            ex.start_ready()
            warm.append(time.perf_counter() - t)
            ex.follow([job.id], poll_s=0.02)
    with connect(host, known_hosts=HostRegistry(ws).known_hosts) as s:
        raw = []
        for _ in range(reps):
            t = time.perf_counter()
            s.run("true")
            raw.append(time.perf_counter() - t)
    return cold * 1e3, statistics.median(warm) * 1e3, statistics.median(raw) * 1e3


LAG_SCRIPT = """
import sys, time, mlops_desktop.tracking as mt
with mt.start_run():
    for i in range(int(sys.argv[1])):
        mt.log_metric("t", time.time(), step=i)
        time.sleep(0.1)
"""


def metric_lag(ws: Workspace, project: Path, host: str, points: int) -> list[float]:
    """Seconds from the log_metric call (its wall-clock value) to the point being readable in the local store."""
    (project / "lag.py").write_text(LAG_SCRIPT)
    python = HostRegistry(ws).get(host).python or sys.executable
    lags: list[float] = []
    with Executor(ws) as ex:
        [job] = ex.submit(JobRequest(host=host, command=[python if host != "local" else sys.executable, "lag.py",
                                                         str(points)], project_dir=str(project)))
        [job] = ex.start_ready()
        seen = 0
        while not job.is_final:
            job = ex.refresh(job)  # what `jobs attach` and the GUI do every 0.2 s; here as fast as it goes
            if job.run_uuid and "t" in ws.tracking.metric_keys(job.run_uuid):
                values = ws.tracking.metric_history(job.run_uuid, "t").values
                now = time.time()
                lags += [now - v for v in values[seen:]]
                seen = len(values)
            time.sleep(0.02)
    return lags


def sync_bench(ws: Workspace, root: Path, files: int) -> tuple[float, float, float]:
    """(first sync, unchanged sync, tar stream over one SSH channel) seconds for `files` small files."""
    project = root / "sync-project"
    for i in range(files):
        d = project / f"pkg{i % 25}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"module_{i}.py").write_text(f"# file {i}\n" + "x = 1\n" * (i % 50 + 5))
    host = HostRegistry(ws).get("box")
    with connect(host, known_hosts=HostRegistry(ws).known_hosts) as s:
        t = time.perf_counter()
        first = sync_dir(s, project, str(root / "remote-sync"))
        t_first = time.perf_counter() - t
        assert first.uploaded == files, first
        t = time.perf_counter()
        again = sync_dir(s, project, str(root / "remote-sync"))
        t_again = time.perf_counter() - t
        assert again.uploaded == 0
        buf = io.BytesIO()
        t = time.perf_counter()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(project, arcname=".")
        (root / "remote-tar").mkdir()
        out = s.run(f"tar -xf - -C {root / 'remote-tar'}", stdin=buf.getvalue(), timeout=120)
        t_tar = time.perf_counter() - t
        assert out.ok, out.stderr
    return t_first, t_again, t_tar


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if not os.path.exists(SSHD):
        print(f"{SSHD} is missing: apt-get install openssh-server", file=sys.stderr)
        return 1
    reps = 5 if args.quick else 15
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp:
        root = Path(tmp)
        (root / "sshd").mkdir(mode=0o700)
        sshd, port, key = start_sshd(root / "sshd")
        try:
            ws = Workspace.open(root / "ws")
            HostRegistry(ws).add("box", hostname="127.0.0.1", port=port, user=getpass.getuser(),
                                 identity_file=str(key), python=sys.executable, work_dir=str(root / "remote"))
            connect(HostRegistry(ws).get("box"), known_hosts=HostRegistry(ws).known_hosts, accept_new=True).close()
            project = root / "project"
            project.mkdir()
            (project / "main.py").write_text("print('hi')\n")

            spawn, first, raw_first = local_start(ws, project, reps)
            say("local: submit -> process running", spawn, "ms")
            say("local: submit -> first output line", first, "ms", f"(raw Popen -> first line {raw_first:.2f} ms)")
            result.update(local_spawn_ms=spawn, local_first_output_ms=first, raw_popen_first_output_ms=raw_first,
                          ratio_local_first_output_over_raw_popen=first / raw_first)

            cold, warm, raw_exec = ssh_start(ws, project, reps)
            say("ssh: first job (connect + ship client)", cold, "ms")
            say("ssh: submit -> running (warm connection)", warm, "ms", f"(raw paramiko exec `true` {raw_exec:.2f} ms)")
            result.update(ssh_first_job_start_ms=cold, ssh_job_start_ms=warm, raw_ssh_exec_ms=raw_exec,
                          ratio_ssh_start_over_raw_exec=warm / raw_exec)

            n_points = 20 if args.quick else 50
            for where in ("box", "local"):
                lags = sorted(metric_lag(ws, project, where, n_points))
                med, p95 = statistics.median(lags), lags[int(0.95 * (len(lags) - 1))]
                label = "ssh" if where == "box" else "local"
                say(f"{label}: metric lag log_metric -> local store", med * 1e3, "ms",
                    f"(p95 {p95 * 1e3:.0f} ms, max {lags[-1] * 1e3:.0f} ms, {len(lags)} points; goal <= 1000 ms)")
                result[f"{label}_metric_lag_median_ms"] = med * 1e3
                result[f"{label}_metric_lag_p95_ms"] = p95 * 1e3
                result[f"{label}_metric_lag_max_ms"] = lags[-1] * 1e3
            result["ratio_ssh_metric_lag_p95_over_goal_1s"] = result["ssh_metric_lag_p95_ms"] / 1000
            result["ratio_ssh_over_local_metric_lag_median"] = (result["ssh_metric_lag_median_ms"]
                                                                / result["local_metric_lag_median_ms"])

            files = 1000
            t_first, t_again, t_tar = sync_bench(ws, root, files)
            say(f"sftp sync {files} files, first time", t_first * 1e3, "ms", f"(tar over ssh {t_tar * 1e3:.0f} ms)")
            say(f"sftp sync {files} files, unchanged", t_again * 1e3, "ms")
            result.update(sync_1000_first_ms=t_first * 1e3, sync_1000_unchanged_ms=t_again * 1e3,
                          tar_over_ssh_1000_ms=t_tar * 1e3, ratio_sync_first_over_tar=t_first / t_tar,
                          ratio_sync_unchanged_over_tar=t_again / t_tar)
            ws.close()
        finally:
            sshd.terminate()
            sshd.wait(5)
    print(json.dumps({k: round(v, 3) for k, v in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
