"""Where job processes live: this machine (own process group) or an SSH host (setsid, streamed back by offsets)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_desktop.execution import launch
from mlops_desktop.execution.errors import JobError, SshError
from mlops_desktop.execution.models import Host, Job
from mlops_desktop.progress import Progress

READ_CHUNK = 4 << 20


@dataclass
class ProcessStatus:
    state: str  # running | exited | gone
    exit_code: int | None = None
    ended_at: float | None = None  # when the exit code was written (not when we noticed)
    run_seconds: float | None = None  # how long the job ran, by the host's own clock (None: not recorded)


def local_job_dir(ws: Any, job_id: int) -> Path:
    # absolute: the wrapper script and the job's environment must not depend on a working directory
    return Path(os.path.abspath(ws.paths.jobs)) / str(job_id)


class LocalBackend:
    """Jobs on this machine: `sh run.sh` in a new session (its pid is the process group id), log in the job dir."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, job: Job, host: Host, env: dict[str, str], progress: Progress) -> tuple[int, str]:
        job_dir = local_job_dir(self.ws, job.id)
        job_dir.mkdir(parents=True, exist_ok=True)
        cwd = os.path.join(job.project_dir, job.work_subdir) if job.project_dir else str(job_dir)
        if not Path(cwd).is_dir():
            raise JobError(f"job {job.id}: project directory {cwd} does not exist")
        env = {**env, "MLOPS_DESKTOP_HOME": os.path.abspath(self.ws.root)}
        script = job_dir / launch.SCRIPT
        script.write_text(launch.wrapper_script(job_dir=str(job_dir), cwd=cwd, argv=job.argv, env=env),
                          encoding="utf-8")
        (job_dir / launch.LOG).touch()
        try:
            proc = subprocess.Popen(["/bin/sh", str(script)], cwd=str(job_dir), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                    close_fds=True)
        except OSError as exc:
            raise JobError(f"job {job.id}: cannot start /bin/sh: {exc.strerror}") from None
        self._children[job.id] = proc
        return proc.pid, str(job_dir)

    def status(self, job: Job) -> ProcessStatus:
        job_dir = local_job_dir(self.ws, job.id)
        code, seconds = _read_exit(job_dir / launch.EXIT)
        if code is not None:
            self._reap(job.id)
            return ProcessStatus("exited", code, _mtime(job_dir / launch.EXIT), seconds)
        proc = self._children.get(job.id)
        if proc is not None and proc.poll() is not None:
            self._children.pop(job.id, None)
        if job.pid and _group_alive(job.pid):
            return ProcessStatus("running")
        code, seconds = _read_exit(job_dir / launch.EXIT)  # it may have finished between the two looks
        return ProcessStatus("exited", code, _mtime(job_dir / launch.EXIT), seconds) if code is not None \
            else ProcessStatus("gone")

    def _reap(self, job_id: int) -> None:
        proc = self._children.get(job_id)
        if proc is not None and proc.poll() is not None:
            self._children.pop(job_id, None)

    def cancel(self, job: Job, grace_s: float) -> bool:
        """SIGTERM to the group, SIGKILL after `grace_s`; True when it had to be killed."""
        if not job.pid:
            return False
        try:
            os.killpg(job.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            self._reap(job.id)
            if not _group_alive(job.pid):
                return False
            time.sleep(0.05)
        try:
            os.killpg(job.pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        for _ in range(100):
            self._reap(job.id)
            if not _group_alive(job.pid):
                break
            time.sleep(0.02)
        return True

    def log_path(self, job: Job) -> Path:
        return local_job_dir(self.ws, job.id) / launch.LOG


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _read_exit(path: Path) -> tuple[int | None, float | None]:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None, None
    return launch.parse_exit(text)


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process of the group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg succeeds on zombies; look for a live member
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                data = fh.read()
        except OSError:
            continue
        tail = data[data.rindex(b")") + 2:].split()
        if len(tail) > 2 and int(tail[2]) == pgid and tail[0] != b"Z":
            return True
    return False


@dataclass
class PumpResult:
    log_bytes: bytes = b""
    spool_bytes: int = 0
    metric_points: int = 0
    import_error: str = ""


class RemoteStream:
    """Copies a remote job's log and spool into local mirror files, exactly once, from byte offsets in the DB.

    Every pump holds an exclusive lock on the job's local folder and re-reads the offsets from the database, so
    two processes streaming the same job (the app and `jobs attach`) never append the same bytes twice; the spool
    import runs under the same lock.
    """

    def __init__(self, ws: Any, job: Job) -> None:
        self.ws = ws
        self.job_id = job.id
        self.remote_dir = job.remote_dir
        self.local_dir = local_job_dir(ws, job.id)
        self.local_dir.mkdir(parents=True, exist_ok=True)
        self.log_offset = job.log_offset
        self.spool_offset = job.spool_offset
        self.import_offset = 0
        self.import_error = ""

    def _sync_offsets(self) -> None:
        """Take the offsets from the DB; a crash between appending to a mirror and saving the offset leaves extra
        bytes: drop them (they are read again)."""
        row = self.ws.db.query("SELECT log_offset, spool_offset FROM jobs WHERE id = ?", (self.job_id,))
        if row:
            self.log_offset, self.spool_offset = int(row[0][0]), int(row[0][1])
        for name, offset in ((launch.LOG, self.log_offset), (launch.SPOOL, self.spool_offset)):
            path = self.local_dir / name
            with path.open("ab") as fh:
                if fh.tell() > offset:
                    fh.truncate(offset)
                elif fh.tell() < offset:
                    raise JobError(f"job {self.job_id}: the local copy {path} is shorter than the recorded offset "
                                   f"{offset}; it was modified outside MLOps Desktop")

    def pump(self, sftp: Any, store: Any) -> PumpResult:
        import fcntl

        with (self.local_dir / ".stream.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._sync_offsets()
                return self._pump_locked(sftp, store)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _pump_locked(self, sftp: Any, store: Any) -> PumpResult:
        result = PumpResult()
        log = _read_from(sftp, posixpath.join(self.remote_dir, launch.LOG), self.log_offset)
        spool = _read_from(sftp, posixpath.join(self.remote_dir, launch.SPOOL), self.spool_offset)
        if spool:
            self._fetch_blobs(sftp, spool)
        if log:
            _append(self.local_dir / launch.LOG, log)
            result.log_bytes = log
        if spool:
            _append(self.local_dir / launch.SPOOL, spool)
            result.spool_bytes = len(spool)
        if log or spool:
            self.log_offset += len(log)
            self.spool_offset += len(spool)
            self.ws.db.write(lambda c: c.execute("UPDATE jobs SET log_offset = ?, spool_offset = ? WHERE id = ?",
                                                 (self.log_offset, self.spool_offset, self.job_id)))
        mirror = self.local_dir / launch.SPOOL
        if not self.import_error and mirror.stat().st_size > self.import_offset:
            from mlops_desktop.errors import MlopsError
            from mlops_desktop.tracking.spool import import_spool

            with mirror.open("rb") as fh:
                has_header = fh.readline().endswith(b"\n")
            if has_header:
                try:
                    imported = import_spool(store, mirror, start_offset=self.import_offset)
                except MlopsError as exc:
                    # a damaged spool must not stop the log stream: stop importing, say so on the job
                    self.import_error = f"metrics import stopped: {exc}"
                    result.import_error = self.import_error
                else:
                    self.import_offset = imported.end_offset
                    result.metric_points = imported.metric_points
        return result

    def _fetch_blobs(self, sftp: Any, data: bytes) -> None:
        """Artifacts logged remotely live beside the spool (SPOOL.blobs/aa/bbbb...): copy them before importing."""
        if b'"artifact"' not in data:
            return
        for line in data.split(b"\n"):
            if b'"artifact"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # an incomplete last line: fetched with the next pump
            digest = record.get("digest") if record.get("type") == "artifact" else None
            if not digest:
                continue
            rel = f"{digest[:2]}/{digest[2:]}"
            local = self.local_dir / (launch.SPOOL + ".blobs") / rel
            if local.exists():
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_suffix(".part")
            sftp.get(posixpath.join(self.remote_dir, launch.SPOOL + ".blobs", rel), str(tmp))
            if hashlib.sha256(tmp.read_bytes()).hexdigest() != digest:
                tmp.unlink()
                raise JobError(f"job {self.job_id}: artifact blob {digest[:12]} changed in transit")
            os.replace(tmp, local)


def _read_from(sftp: Any, path: str, offset: int) -> bytes:
    try:
        with sftp.open(path, "rb") as fh:
            fh.seek(offset)
            chunks = []
            while True:
                data = fh.read(READ_CHUNK)
                if not data:
                    break
                chunks.append(data)
                if len(data) < READ_CHUNK:
                    break
            return b"".join(chunks)
    except FileNotFoundError:
        return b""


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def project_key(project_dir: str) -> str:
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(project_dir).name)[:40] or "project"
    return f"{name}-{hashlib.sha256(os.path.abspath(project_dir).encode()).hexdigest()[:12]}"


class RemoteBackend:
    """Jobs on SSH hosts: project synced over SFTP, started detached (setsid nohup), streamed back from offsets."""

    def __init__(self, ws: Any, registry: Any, *, accept_new_host_key: bool = False) -> None:
        self.ws = ws
        self.registry = registry
        self.accept_new_host_key = accept_new_host_key
        self._sessions: dict[str, Any] = {}
        self._lib_synced: set[str] = set()
        self.streams: dict[int, RemoteStream] = {}

    def session(self, host: Host) -> Any:
        from mlops_desktop.execution.ssh import connect

        s = self._sessions.get(host.name)
        if s is not None and s.alive:
            return s
        if s is not None:
            self.drop(host.name)
        try:
            s = connect(host, known_hosts=self.registry.known_hosts, accept_new=self.accept_new_host_key,
                        resolve_jump=self.registry.resolve_jump)
        except SshError as exc:
            self.registry.note_contact(host.name, str(exc))
            raise
        self.adopt(host, s)
        return s

    def connect_all(self, hosts: list[Host], timeout_s: float) -> dict[str, str]:
        """Connect to several hosts at once, each within ``timeout_s``; returns host -> why it did not answer.
        Connected sessions are kept for the refresh that follows; only the connecting runs on threads."""
        from concurrent.futures import ThreadPoolExecutor, wait

        from mlops_desktop.execution.ssh import connect

        todo = [h for h in hosts if not (h.name in self._sessions and self._sessions[h.name].alive)]
        failed: dict[str, str] = {}
        if not todo:
            return failed
        import paramiko  # noqa: F401 - imported here, not on the clock of the first host (~1 s on a busy machine)
        pool = ThreadPoolExecutor(max_workers=min(16, len(todo)), thread_name_prefix="mlops-ssh-connect")
        futures = {pool.submit(connect, h, known_hosts=self.registry.known_hosts,
                               accept_new=self.accept_new_host_key, resolve_jump=self.registry.resolve_jump,
                               timeout=timeout_s): h for h in todo}
        done, late = wait(futures, timeout=timeout_s + 2.0)
        pool.shutdown(wait=False, cancel_futures=True)  # a connect past its own timeout is not waited for
        for future in done:
            host = futures[future]
            try:
                self.adopt(host, future.result())
            except SshError as exc:
                failed[host.name] = str(exc)
        for future in late:
            host = futures[future]
            failed[host.name] = f"host {host.name} ({host.address}) did not answer within {timeout_s:.0f} s"
            future.add_done_callback(_close_session)
        for name, error in failed.items():
            self.registry.note_contact(name, error)
        return failed

    def adopt(self, host: Host, session: Any) -> None:
        self.drop(host.name)
        self._sessions[host.name] = session
        self.registry.note_contact(host.name)

    def connected(self, host_name: str) -> bool:
        return host_name in self._sessions

    def drop(self, host_name: str) -> None:
        """Forget a (dead) connection and the streams that used it."""
        s = self._sessions.pop(host_name, None)
        if s is not None:
            s.close()
        self._lib_synced.discard(host_name)
        for job_id in [j for j, st in self.streams.items() if getattr(st, "host", None) == host_name]:
            self.streams.pop(job_id, None)

    def base_dir(self, host: Host, session: Any) -> str:
        return host.work_dir.rstrip("/") if host.work_dir else f"{session.home}/.mlops-desktop"

    def start(self, job: Job, host: Host, env: dict[str, str], progress: Progress) -> tuple[int, str]:
        try:
            return self._start(job, host, env, progress)
        except OSError as exc:
            if getattr(exc, "errno", None) is None:
                self.drop(host.name)
                raise SshError(f"lost the connection to host {host.name} while starting job {job.id}: "
                               f"{exc or type(exc).__name__}") from None
            # an SFTP error with an errno: permission denied, disk full, ... on the host
            raise JobError(f"job {job.id}: on host {host.name}: {exc.strerror or exc} "
                           f"({getattr(exc, 'filename', '') or ''})") from None
        except _connection_errors() as exc:
            self.drop(host.name)
            raise SshError(f"lost the connection to host {host.name} while starting job {job.id}: "
                           f"{exc or type(exc).__name__}") from None

    def _start(self, job: Job, host: Host, env: dict[str, str], progress: Progress) -> tuple[int, str]:
        from mlops_desktop.execution.sync import sync_dir

        q = shlex.quote
        s = self.session(host)
        base = self.base_dir(host, s)
        job_dir = f"{base}/jobs/{job.run_uuid}"
        lib_root = f"{base}/lib/mlops_desktop-{_package_version()}"
        if host.name not in self._lib_synced:
            progress.update(0.05, f"syncing MLOps Desktop's tracking client to {host.name}")
            sync_dir(s, Path(__file__).resolve().parents[1], f"{lib_root}/mlops_desktop",
                     excludes=["gui/"], progress=progress.sub(0.05, 0.3))
            self._lib_synced.add(host.name)
        from mlops_desktop.execution.sync import mkdirs

        mkdirs(s.sftp, job_dir, set())
        cwd, snapshot = job_dir, ":"
        if job.project_dir:
            progress.update(0.3, f"syncing {job.project_dir} to {host.name}")
            project_remote = f"{base}/projects/{project_key(job.project_dir)}"
            sync_dir(s, Path(job.project_dir), project_remote, progress=progress.sub(0.3, 0.8))
            src = f"{job_dir}/src"
            # hard-linked snapshot: later syncs replace files by rename, so this job's copy never changes
            snapshot = f"cp -al {q(project_remote)} {q(src)} 2>/dev/null || cp -a {q(project_remote)} {q(src)}"
            cwd = posixpath.join(src, job.work_subdir) if job.work_subdir else src
        env = {**env, "MLOPS_SPOOL": f"{job_dir}/{launch.SPOOL}", "PYTHONPATH": lib_root}
        script = launch.wrapper_script(job_dir=job_dir, cwd=cwd, argv=job.argv, env=env)
        with s.sftp.open(f"{job_dir}/{launch.SCRIPT}", "wb") as fh:
            fh.write(script.encode("utf-8"))
        progress.update(0.9, f"starting job {job.id} on {host.name}")
        pid_file = f"{job_dir}/{launch.PID}"
        # one round trip: snapshot, start detached in its own session, wait for the wrapper to record its pid
        out = s.run(f"cd {q(job_dir)} || exit 90; {{ {snapshot}; }} || {{ echo 'cannot snapshot the project' >&2; "
                    f"exit 91; }}; {{ setsid nohup /bin/sh {q(launch.SCRIPT)} >/dev/null 2>&1 </dev/null & }}; "
                    f"i=0; while [ ! -s {q(pid_file)} ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "
                    f"cat {q(pid_file)}", timeout=300)
        pid_text = out.stdout.strip()
        if not out.ok or not pid_text.isdigit():
            raise JobError(f"job {job.id}: the job did not start on {host.name} (exit {out.exit_code}): "
                           f"{(out.stderr or out.stdout).strip()[:500]}", hint="is setsid (util-linux) installed?")
        return int(pid_text), job_dir

    def status(self, job: Job, host: Host, *, check_alive: bool = True) -> ProcessStatus:
        try:
            return self._status(job, host, check_alive)
        except _connection_errors() as exc:
            self.drop(host.name)
            raise SshError(f"lost the connection to host {host.name} while checking job {job.id}: {exc}",
                           hint=f"resume with: mlops-desktop jobs attach {job.id}") from None

    def _status(self, job: Job, host: Host, check_alive: bool) -> ProcessStatus:
        s = self.session(host)
        code, ended, seconds = _remote_exit(s.sftp, job.remote_dir)
        if code is not None:
            return ProcessStatus("exited", code, ended, seconds)
        if not check_alive:
            return ProcessStatus("running")
        pid = int(job.pid or 0)
        out = s.run(f"kill -0 -- -{pid} 2>/dev/null && echo alive || echo gone", timeout=30)
        if "alive" in out.stdout:
            return ProcessStatus("running")
        code, ended, seconds = _remote_exit(s.sftp, job.remote_dir)
        return ProcessStatus("exited", code, ended, seconds) if code is not None else ProcessStatus("gone")

    def pump(self, job: Job, host: Host, store: Any) -> PumpResult:
        s = self.session(host)
        stream = self.streams.get(job.id)
        if stream is None:
            stream = self.streams[job.id] = RemoteStream(self.ws, job)
            stream.host = host.name  # type: ignore[attr-defined]
        try:
            return stream.pump(s.sftp, store)
        except _connection_errors() as exc:
            self.drop(host.name)
            raise SshError(f"lost the connection to host {host.name} while streaming job {job.id}: {exc}",
                           hint=f"resume with: mlops-desktop jobs attach {job.id}") from None

    def cancel(self, job: Job, host: Host, grace_s: float) -> bool:
        pid = int(job.pid or 0)
        if pid <= 0:
            return False
        ticks = max(1, int(grace_s * 10))
        s = self.session(host)
        out = s.run(f"kill -TERM -- -{pid} 2>/dev/null; i=0; while kill -0 -- -{pid} 2>/dev/null; do "
                    f"if [ $i -ge {ticks} ]; then kill -KILL -- -{pid} 2>/dev/null; echo killed; break; fi; "
                    f"sleep 0.1; i=$((i+1)); done; echo done", timeout=grace_s + 30)
        return "killed" in out.stdout

    def close(self) -> None:
        for name in list(self._sessions):
            self.drop(name)


def _close_session(future: Any) -> None:
    """A connection that came after we stopped waiting: close it."""
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _connection_errors() -> tuple[type[BaseException], ...]:
    import paramiko

    return (OSError, EOFError, paramiko.SSHException)


def _remote_exit(sftp: Any, job_dir: str) -> tuple[int | None, float | None, float | None]:
    """(exit code, time it was written, seconds the job ran) or Nones while there is no exit_code file.

    SFTP gives whole-second mtimes: that alone made a short job's duration 0.0 s. The seconds come from the
    wrapper's own clock readings."""
    try:
        with sftp.open(posixpath.join(job_dir, launch.EXIT), "rb") as fh:
            text = fh.read().decode("ascii", "replace")
            ended = fh.stat().st_mtime
    except FileNotFoundError:
        return None, None, None
    code, seconds = launch.parse_exit(text)
    if code is None:
        return None, None, None
    return code, float(ended) if ended else None, seconds


@functools.lru_cache(maxsize=1)
def _package_version() -> str:
    from mlops_desktop import __version__

    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        if "gui" not in path.relative_to(root).parts:
            st = path.stat()
            digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"{__version__}-{digest.hexdigest()[:10]}"
