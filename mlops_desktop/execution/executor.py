"""The job runner: submit (with sweeps), start what fits the queue, watch, stream, cancel and finish jobs."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_desktop.errors import MlopsError, NotFoundError
from mlops_desktop.execution import launch, projects, sweeps
from mlops_desktop.execution.backends import LocalBackend, ProcessStatus, RemoteBackend, local_job_dir
from mlops_desktop.execution.errors import JobError, SshError
from mlops_desktop.execution.hosts import HostRegistry
from mlops_desktop.execution.jobstore import JobStore
from mlops_desktop.execution.models import (
    CANCELLED,
    FAILED,
    LOST,
    QUEUED,
    RUN_STATUS_FOR,
    RUNNING,
    STARTING,
    SUCCEEDED,
    Host,
    Inventory,
    Job,
)
from mlops_desktop.execution.projects import SyncPlan
from mlops_desktop.progress import Progress

ALIVE_CHECK_S = 5.0
CONTACT_RECORD_S = 2.0  # how often a remote job's last contact time is written while it is streamed
LIST_TIMEOUT_S = 3.0  # `jobs list`: how long a host may take to answer before it is marked, not waited for
STALE_START_S = 900.0
GPU_INVENTORY_MAX_AGE_S = 30.0  # GPU jobs wait in the queue: re-read who uses the GPUs this often  # a job 'starting' this long without a process: its starter died mid-way
LogCallback = Callable[[Job, bytes], None]


@dataclass
class JobRequest:
    """What `jobs submit` asks for; `sweep` expands it into one job (and child run) per parameter set."""

    host: str = "local"
    kind: str = "command"  # command | script | recipe
    command: list[str] | None = None
    script: str | None = None
    recipe: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    sweep: str | None = None
    seed: int | None = None
    gpus: int = 0
    priority: int = 0
    experiment: str = ""
    name: str = ""
    # None: the project around the current folder (mlops.toml, else git root, else the folder itself; the job runs
    # in the current folder); "": no project (remote: run in the job dir); a path: that folder, run at its root
    project_dir: str | None = None
    confirm_sync: bool = False  # sync a project to an SSH host even when it is larger than the limit


@dataclass
class SurveyResult:
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> why it did not answer this time
    errors: list[str] = field(default_factory=list)
    finished: list[Job] = field(default_factory=list)


@dataclass
class TickResult:
    started: list[Job] = field(default_factory=list)
    finished: list[Job] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Executor:
    """One per workspace and process; holds SSH connections and stream positions. Not thread-safe: one worker."""

    def __init__(self, ws: Any, *, accept_new_host_key: bool = False, grace_s: float = 10.0) -> None:
        self.ws = ws
        self.hosts = HostRegistry(ws)
        self.jobs = JobStore(ws)
        self.local = LocalBackend(ws)
        self.remote = RemoteBackend(ws, self.hosts, accept_new_host_key=accept_new_host_key)
        self.grace_s = grace_s
        self._alive_checked: dict[int, float] = {}
        self._local_log_pos: dict[int, int] = {}
        self._cancel_sent: set[int] = set()

    # ---------------------------------------------------------------------------------------------- hosts
    def inspect(self, host_name: str) -> Inventory:
        """Probe a host (OS, CPUs, memory, disk, Python, GPUs) and remember what it found."""
        from mlops_desktop.execution import inventory

        host = self.hosts.get(host_name)
        if host.is_local:
            inv = inventory.collect_local(host, str(self.ws.root))
        else:
            try:
                inv = inventory.collect_remote(self.remote.session(host))
            except SshError:
                self.remote.drop(host.name)
                raise
        self.hosts.save_inventory(host.name, inv)
        return inv

    # ---------------------------------------------------------------------------------------------- submit
    def submit(self, req: JobRequest, on_plan: Callable[[SyncPlan], None] | None = None) -> list[Job]:
        """Queue the job(s) of a request. For an SSH host, what its project sync would copy is counted first and
        handed to ``on_plan`` (shown before the first sync); above the limit it raises SyncTooLargeError unless
        the project was given (``--project DIR``) or ``confirm_sync`` says to copy it anyway."""
        host = self.hosts.get(req.host)
        if req.gpus < 0:
            raise JobError(f"--gpus must be 0 or more, got {req.gpus}")
        if req.gpus:
            inv = host.inventory or self.inspect(host.name)
            if len(inv.gpus) < req.gpus:
                raise JobError(f"host {host.name} has {len(inv.gpus)} GPU(s); the job asks for {req.gpus}",
                               hint=inv.gpu_error or f"refresh with: mlops-desktop hosts inspect {host.name}")
        choice = projects.choose(req.project_dir)
        project = str(choice.root) if choice else ""
        subdir = choice.subdir if choice else ""
        if choice is not None and not host.is_local:
            plan = projects.plan_sync(choice, host.name)
            if on_plan is not None:
                on_plan(plan)
            if plan.over_limit and not (choice.explicit or req.confirm_sync):
                raise projects.SyncTooLargeError(plan)
        python = host.python if (host.python and not host.is_local) else sys.executable
        script = req.script
        if req.kind == "script" and script:
            script = self._check_script(script, project, host, subdir)
        points = sweeps.expand(req.sweep, seed=req.seed) if req.sweep else [{}]
        argvs = [launch.build_argv(req.kind, python=python, command=req.command, script=script, recipe=req.recipe,
                                   params={**req.params, **point}) for point in points]
        experiment = req.experiment or self.ws.settings.default_experiment
        parent_uuid = None
        if req.sweep:
            store = self.ws.tracking
            exp = store.get_or_create_experiment(experiment)
            parent = store.create_run(exp.id, name=req.name or f"sweep {req.sweep}", host=host.name,
                                      command=f"sweep {req.sweep}", params=req.params,
                                      tags={"mlops.sweep": req.sweep, "mlops.sweep_size": str(len(points))})
            parent_uuid = parent.uuid
        jobs = []
        for i, (point, argv) in enumerate(zip(points, argvs, strict=True)):
            name = req.name or _default_name(req)
            if req.sweep:
                name = f"{name} [{i + 1}/{len(points)}] " + " ".join(f"{k}={v}" for k, v in point.items())
            jobs.append(self.jobs.add(host=host.name, kind=req.kind, argv=argv, name=name, experiment=experiment,
                                      project_dir=project, params={**req.params, **point}, gpus=req.gpus,
                                      priority=req.priority, parent_run_uuid=parent_uuid, work_subdir=subdir))
        return jobs

    def _check_script(self, script: str, project: str, host: Host, subdir: str = "") -> str:
        """The script's path as the job gives it: absolute here; on an SSH host relative to the folder the job
        runs in inside the project copy (a relative path is taken from that folder)."""
        workdir = Path(project, subdir) if project else Path(os.getcwd())
        path = Path(script).expanduser()
        if not path.is_absolute():
            path = workdir / path
        if not path.is_file():
            raise JobError(f"script {path} does not exist")
        if host.is_local:
            return str(path.resolve())
        try:
            path.resolve().relative_to(project)
        except ValueError:
            raise JobError(f"script {path} is outside the project {project}; only the project is copied to "
                           f"host {host.name}", hint="pass --project DIR containing the script") from None
        return Path(os.path.relpath(path.resolve(), workdir.resolve())).as_posix()

    # ---------------------------------------------------------------------------------------------- start
    def start_ready(self, progress: Progress | None = None) -> list[Job]:
        """Start every queued job that fits now (per-host concurrency, free GPUs, priority order)."""
        hosts = {h.name: h for h in self.hosts.list()}
        queued = self.jobs.list(states=(QUEUED,), limit=100_000)
        for job in queued:
            if job.host not in hosts:
                self._finish(job, FAILED, error=f"host {job.host} was removed")
        for name in {j.host for j in queued if j.gpus_requested and j.host in hosts}:
            host = hosts[name]
            if host.inventory_at is None or time.time() - host.inventory_at > GPU_INVENTORY_MAX_AGE_S:
                with contextlib.suppress(MlopsError):  # unreachable: keep the last known picture
                    self.inspect(name)
                    hosts[name] = self.hosts.get(name)
        started = []
        for job in self.jobs.claim_startable(hosts):
            started.append(self._start(job, hosts[job.host], progress or Progress()))
        return started

    def _start(self, job: Job, host: Host, progress: Progress) -> Job:
        store = self.ws.tracking
        try:
            exp = store.get_or_create_experiment(job.experiment or self.ws.settings.default_experiment)
            tags = {"mlops.job_id": str(job.id), "mlops.job_kind": job.kind, "mlops.host": host.name}
            if job.gpu_ids:
                tags["mlops.gpus"] = job.gpu_ids
            run = store.create_run(exp.id, name=job.name, command=shlex.join(job.argv),
                                   host="" if host.is_local else host.name, params=job.params, tags=tags,
                                   parent_uuid=job.parent_run_uuid)
        except MlopsError as exc:
            return self._finish(job, FAILED, error=f"cannot create the tracking run: {exc}")
        self.jobs.update(job.id, run_uuid=run.uuid)
        job.run_uuid = run.uuid
        env = {"MLOPS_RUN_ID": run.uuid, "MLOPS_EXPERIMENT": exp.name, "CUDA_VISIBLE_DEVICES": job.gpu_ids,
               "PYTHONUNBUFFERED": "1"}
        try:
            if host.is_local:
                pid, job_dir = self.local.start(job, host, env, progress)
            else:
                pid, job_dir = self.remote.start(job, host, env, progress)
        except (MlopsError, OSError) as exc:
            if isinstance(exc, SshError):
                self.remote.drop(host.name)
            message = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
            return self._finish(job, FAILED, error=f"could not start on host {host.name}: {message}")
        now = time.time()
        self.jobs.update(job.id, state=RUNNING, pid=pid, remote_dir="" if host.is_local else job_dir,
                         started_at=now, last_contact_at=None if host.is_local else now)
        job = self.jobs.get(job.id)
        if job.cancel_requested:
            return self.cancel(job.id)
        return job

    # ---------------------------------------------------------------------------------------------- watch
    def refresh(self, job: Job, on_log: LogCallback | None = None, *, connect: bool = True) -> Job:
        """Bring one job up to date: stream new output (remote), notice its end. Raises SshError when the host
        cannot be reached; the job then stays 'running' (it keeps running there) and can be attached later."""
        if job.is_final or job.state == QUEUED:
            return job
        host = self._host_or_none(job.host)
        if job.state == STARTING and not job.pid:
            if job.started_at is not None and time.time() - job.started_at > STALE_START_S:
                return self._finish(job, FAILED, error="the process that was starting this job stopped before "
                                                       "the job was launched; submit it again")
            return job
        if host is None:
            return self._finish(job, LOST, error=f"host {job.host} was removed while the job ran")
        if job.cancel_requested and job.state == RUNNING and job.id not in self._cancel_sent:
            # a cancel that could not reach the job before (host down, or the canceller died): send it now
            self._cancel_sent.add(job.id)
            if host.is_local:
                self.local.cancel(job, self.grace_s)
            elif connect or self.remote.connected(host.name):
                self.remote.cancel(job, host, self.grace_s)
        if host.is_local:
            self._emit_log(job, on_log)
            status = self.local.status(job)
            if status.state == "running":
                return job
            self._emit_log(job, on_log)
            return self._conclude(job, status)
        if not connect and not self.remote.connected(host.name):
            return job
        self._pump(job, host, on_log)
        now = time.monotonic()
        check_alive = now - self._alive_checked.get(job.id, 0.0) >= ALIVE_CHECK_S
        try:
            status = self.remote.status(job, host, check_alive=check_alive)
        except SshError:
            self.remote.drop(host.name)
            raise
        if check_alive:
            self._alive_checked[job.id] = now
        if time.time() - (job.last_contact_at or 0.0) >= CONTACT_RECORD_S:
            self.jobs.update(job.id, last_contact_at=time.time())  # the state shown is as of this contact
            job.last_contact_at = time.time()
        if status.state == "running":
            return job
        while self._pump(job, host, on_log):  # drain everything written before the end
            pass
        return self._conclude(job, status)

    def _pump(self, job: Job, host: Host, on_log: LogCallback | None) -> bool:
        result = self.remote.pump(job, host, self.ws.tracking)
        if result.import_error:
            self.jobs.update(job.id, error=result.import_error)
        self._emit_log(job, on_log)  # from the local copy: it may also have been advanced by another process
        return bool(result.log_bytes or result.spool_bytes)

    def _emit_log(self, job: Job, on_log: LogCallback | None) -> None:
        """Hand `on_log` the bytes of the job's local log (remote: the streamed copy) not handed over yet."""
        if on_log is None:
            return
        pos = self._local_log_pos.get(job.id, 0)
        try:
            with self.local.log_path(job).open("rb") as fh:
                fh.seek(pos)
                data = fh.read()
        except FileNotFoundError:
            return
        if data:
            self._local_log_pos[job.id] = pos + len(data)
            on_log(job, data)

    def _conclude(self, job: Job, status: ProcessStatus) -> Job:
        job = self.jobs.get(job.id)
        exit_code, ended_at = status.exit_code, status.ended_at
        if status.run_seconds is not None and job.started_at is not None:
            # the job's own clock readings: exact to the sub-second and immune to a host clock that differs
            ended_at = job.started_at + status.run_seconds
        elif ended_at is not None and job.started_at is not None:
            ended_at = max(ended_at, job.started_at)  # remote clocks may differ; never a negative duration
        if job.cancel_requested:
            return self._finish(job, CANCELLED, exit_code=exit_code, ended_at=ended_at)
        if exit_code is None:
            return self._finish(job, LOST, error="the job's processes are gone and it left no exit code "
                                                   "(killed with SIGKILL, out of memory, or the host rebooted)")
        if exit_code == 0:
            return self._finish(job, SUCCEEDED, exit_code=0, ended_at=ended_at)
        error = "cannot enter the job directory" if exit_code == launch.CANNOT_ENTER_EXIT else ""
        return self._finish(job, FAILED, exit_code=exit_code, error=error, ended_at=ended_at)

    def _finish(self, job: Job, state: str, *, exit_code: int | None = None, error: str = "",
                ended_at: float | None = None) -> Job:
        if self.jobs.finish(job.id, state, exit_code=exit_code, error=error, ended_at=ended_at):
            if error:
                self._note_in_log(job, error)
            store = self.ws.tracking
            job = self.jobs.get(job.id)
            if job.run_uuid:
                with contextlib.suppress(NotFoundError):
                    store.set_terminated(job.run_uuid, RUN_STATUS_FOR[state], end_time=job.ended_at)  # not "noticed"
                    tags = self._failure_tags(job, state, exit_code, error)
                    if tags:
                        store.set_tags(job.run_uuid, tags)
                if state == SUCCEEDED:  # a run that asked for `--register NAME` (remote: now its results are here)
                    from mlops_desktop.registry.jobs import register_pending

                    with contextlib.suppress(NotFoundError):
                        register_pending(self.ws, job.run_uuid)
            if job.parent_run_uuid:
                self._maybe_finish_parent(job.parent_run_uuid)
            self.remote.streams.pop(job.id, None)
        return self.jobs.get(job.id)

    def _failure_tags(self, job: Job, state: str, exit_code: int | None, error: str) -> dict[str, str]:
        """Why a failed or lost job's run ended (the contract of run tags): ``mlops.error`` (one line; a summary
        the job's own tracking client wrote, naming its exception, is kept), ``mlops.error.exit_code`` and
        ``mlops.error.output_tail`` (the last lines of its output, remote jobs: the streamed copy)."""
        if state not in (FAILED, LOST) or not job.run_uuid:
            return {"mlops.error": error[:1000]} if error and job.run_uuid else {}
        tail = launch.output_tail(self.local.log_path(job))
        tags: dict[str, str] = {}
        if tail:
            tags["mlops.error.output_tail"] = tail
        if exit_code is not None:
            tags["mlops.error.exit_code"] = str(exit_code)
        summary = error or (launch.failure_summary(exit_code, tail) if exit_code is not None else "")
        existing = self.ws.tracking.get_run(job.run_uuid).tags.get("mlops.error")
        if summary and not (existing and not error):
            tags["mlops.error"] = summary[:1000]
        return tags

    def _note_in_log(self, job: Job, message: str) -> None:
        job_dir = local_job_dir(self.ws, job.id)
        with contextlib.suppress(OSError):
            job_dir.mkdir(parents=True, exist_ok=True)
            if job.remote_dir:  # the mirror must stay byte-identical to the remote log
                (job_dir / "error.txt").write_text(message + "\n", encoding="utf-8")
            else:
                with (job_dir / launch.LOG).open("a", encoding="utf-8") as fh:
                    fh.write(f"mlops-desktop: {message}\n")

    def _maybe_finish_parent(self, parent_uuid: str) -> None:
        children = self.jobs.list(parent_run_uuid=parent_uuid, limit=100_000)
        if any(not c.is_final for c in children):
            return
        status = "finished" if all(c.state == SUCCEEDED for c in children) else "failed"
        with contextlib.suppress(NotFoundError):
            self.ws.tracking.set_terminated(parent_uuid, status)

    def _host_or_none(self, name: str) -> Host | None:
        try:
            return self.hosts.get(name)
        except NotFoundError:
            return None

    def tick(self, on_log: LogCallback | None = None, *, connect: bool = True, start: bool = True) -> TickResult:
        """Refresh every active job and start what the queue allows; per-host errors are collected, not raised."""
        result = TickResult()
        failed_hosts: set[str] = set()
        for job in self.jobs.list(states=(STARTING, RUNNING), limit=100_000):
            if job.host in failed_hosts:
                continue
            try:
                after = self.refresh(job, on_log, connect=connect)
            except SshError as exc:
                failed_hosts.add(job.host)
                result.errors.append(str(exc))
                continue
            if after.is_final:
                result.finished.append(after)
        if start:
            result.started = self.start_ready()
        return result

    def survey(self, timeout_s: float = LIST_TIMEOUT_S) -> SurveyResult:
        """Bring the listing up to date quickly: local jobs as always, SSH hosts with active jobs contacted at
        once, each within ``timeout_s``. A host that does not answer is marked (its jobs keep the state of their
        last contact), not waited for."""
        active = self.jobs.list(states=(STARTING, RUNNING), limit=100_000)
        remote = {j.host for j in active if j.host != "local"}
        hosts = [h for h in self.hosts.list() if h.name in remote and not h.is_local]
        unreachable = self.remote.connect_all(hosts, timeout_s)
        result = self.tick(connect=False, start=False)
        return SurveyResult(unreachable=unreachable, errors=result.errors, finished=result.finished)

    def follow(self, job_ids: list[int], on_log: LogCallback | None = None, *, poll_s: float = 0.2,
               stop: threading.Event | None = None, reconnect: bool = True, timeout: float | None = None,
               on_error: Callable[[str], None] | None = None, run_queue: bool = True,
               from_start: bool = True) -> list[Job]:
        """Stream the jobs until they all end (or `stop`/`timeout`); reconnects to SSH hosts with backoff.

        `on_log` gets every output byte once per Executor; `from_start=False` skips what was already fetched
        before (what `jobs attach` wants: only what is new since the stream stopped).
        """
        if not from_start:
            for job in (self.jobs.get(i) for i in job_ids):
                if job.id not in self._local_log_pos:
                    self._local_log_pos[job.id] = job.log_offset if job.remote_dir else _size(
                        self.local.log_path(job))
        deadline = None if timeout is None else time.monotonic() + timeout
        backoff = 0.5
        while True:
            if run_queue:
                self.start_ready()
            jobs = [self.jobs.get(i) for i in job_ids]
            pending = [j for j in jobs if not j.is_final]
            if not pending:
                return jobs
            had_error = False
            for job in pending:
                try:
                    self.refresh(job, on_log)
                except SshError as exc:
                    had_error = True
                    if not reconnect:
                        raise
                    if on_error is not None:
                        on_error(f"{exc} (retrying in {backoff:.1f} s)")
            if stop is not None and stop.is_set():
                return [self.jobs.get(i) for i in job_ids]
            if deadline is not None and time.monotonic() > deadline:
                return [self.jobs.get(i) for i in job_ids]
            if had_error:
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            else:
                backoff = 0.5
                time.sleep(poll_s)

    # ---------------------------------------------------------------------------------------------- cancel
    def cancel(self, job_id: int, grace_s: float | None = None) -> Job:
        """Queued: dropped. Running: SIGTERM to its process group, SIGKILL after the grace period."""
        grace = self.grace_s if grace_s is None else grace_s
        job = self.jobs.request_cancel(job_id)
        if job.is_final:
            return job
        if job.state == QUEUED:
            return self._finish(job, CANCELLED)
        if not job.pid:
            return job  # still starting: the starter sees cancel_requested and stops it
        host = self._host_or_none(job.host)
        if host is None:
            return self._finish(job, CANCELLED, error=f"host {job.host} was removed")
        self._cancel_sent.add(job.id)
        if host.is_local:
            self.local.cancel(job, grace)
        else:
            try:
                self.remote.cancel(job, host, grace)
            except SshError:
                self._cancel_sent.discard(job.id)  # stays requested: sent when the host answers again
                raise
        return self.refresh(job)

    def close(self) -> None:
        self.remote.close()

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _default_name(req: JobRequest) -> str:
    if req.kind == "recipe":
        return f"recipe {req.recipe}"
    if req.kind == "script":
        return Path(req.script or "script").name
    return shlex.join(req.command or [])[:80]
