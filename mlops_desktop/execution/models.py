"""Plain entities of the execution capability: hosts, their inventory and GPUs, jobs and job states."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

QUEUED, STARTING, RUNNING = "queued", "starting", "running"
SUCCEEDED, FAILED, CANCELLED, LOST = "succeeded", "failed", "cancelled", "lost"
ACTIVE_STATES = (STARTING, RUNNING)
FINAL_STATES = (SUCCEEDED, FAILED, CANCELLED, LOST)
ALL_STATES = (QUEUED, *ACTIVE_STATES, *FINAL_STATES)
# Tracking run status that mirrors each final job state.
RUN_STATUS_FOR = {SUCCEEDED: "finished", FAILED: "failed", CANCELLED: "killed", LOST: "lost"}


@dataclass
class Gpu:
    index: int
    uuid: str
    name: str
    memory_total_mib: float | None = None
    memory_used_mib: float | None = None
    utilization_pct: float | None = None
    temperature_c: float | None = None
    power_w: float | None = None

    @property
    def memory_fraction(self) -> float | None:
        if not self.memory_total_mib or self.memory_used_mib is None:
            return None
        return self.memory_used_mib / self.memory_total_mib


@dataclass
class GpuProcess:
    gpu_uuid: str
    pid: int
    process_name: str
    used_memory_mib: float | None = None


@dataclass
class Inventory:
    """What a host has, as read by `hosts inspect`."""

    os: str = ""
    kernel: str = ""
    cpus: int = 0
    cpu_busy_pct: float | None = None
    load1: float | None = None
    memory_total_mib: float | None = None
    memory_available_mib: float | None = None
    disk_total_mib: float | None = None
    disk_free_mib: float | None = None
    python: str = ""
    gpus: list[Gpu] = field(default_factory=list)
    gpu_processes: list[GpuProcess] = field(default_factory=list)
    gpu_error: str = ""
    collected_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Inventory:
        raw = dict(raw)
        gpus = [Gpu(**g) for g in raw.pop("gpus", [])]
        procs = [GpuProcess(**p) for p in raw.pop("gpu_processes", [])]
        known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
        return cls(gpus=gpus, gpu_processes=procs, **known)


@dataclass
class Host:
    name: str
    kind: str  # local | ssh
    hostname: str = ""
    port: int = 22
    user: str = ""
    identity_file: str = ""
    proxy_jump: str = ""
    python: str = "python3"
    work_dir: str = ""
    max_jobs: int = 1
    inventory: Inventory | None = None
    inventory_at: float | None = None
    created_at: float = 0.0
    last_contact_at: float | None = None  # the last time an SSH connection to it succeeded
    contact_error: str = ""  # why the last attempt to reach it failed ("" once it answers again)

    @property
    def is_local(self) -> bool:
        return self.kind == "local"

    @property
    def address(self) -> str:
        if self.is_local:
            return "this machine"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port != 22 else ""
        return f"{user}{self.hostname}{port}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["inventory"] = self.inventory.to_dict() if self.inventory else None
        return d


@dataclass
class Job:
    id: int
    host: str
    state: str
    kind: str  # command | script | recipe
    argv: list[str]
    name: str = ""
    experiment: str = ""
    project_dir: str = ""
    params: dict[str, str] = field(default_factory=dict)
    gpus_requested: int = 0
    gpu_ids: str = ""
    priority: int = 0
    run_uuid: str | None = None
    parent_run_uuid: str | None = None
    pid: int | None = None
    remote_dir: str = ""
    exit_code: int | None = None
    error: str = ""
    cancel_requested: bool = False
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    log_offset: int = 0
    spool_offset: int = 0
    last_contact_at: float | None = None  # SSH jobs: when its host last told us its state
    work_subdir: str = ""  # the folder it runs in, relative to project_dir ("" = the project root)

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def contact_age(self) -> float | None:
        """Seconds since its host last told us the state of this SSH job while it was active; None for local
        jobs and jobs that ended (their state is final)."""
        if self.is_final or self.state == QUEUED or self.last_contact_at is None:
            return None
        import time

        return max(0.0, time.time() - self.last_contact_at)

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        import time

        return (self.ended_at or time.time()) - self.started_at

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration"] = self.duration
        d["contact_age"] = self.contact_age
        return d


JOB_COLUMNS = ("id, host, state, kind, argv, name, experiment, project_dir, params, gpus_requested, gpu_ids, priority, "
               "run_uuid, parent_run_uuid, pid, remote_dir, exit_code, error, cancel_requested, created_at, "
               "started_at, ended_at, log_offset, spool_offset, last_contact_at, work_subdir")


def job_from_row(row: tuple) -> Job:
    (id_, host, state, kind, argv, name, experiment, project_dir, params, gpus_requested, gpu_ids, priority,
     run_uuid, parent_run_uuid, pid, remote_dir, exit_code, error, cancel_requested, created_at, started_at,
     ended_at, log_offset, spool_offset, last_contact_at, work_subdir) = row
    return Job(id=id_, host=host, state=state, kind=kind, argv=json.loads(argv), name=name, experiment=experiment,
               project_dir=project_dir, params=json.loads(params), gpus_requested=gpus_requested, gpu_ids=gpu_ids,
               priority=priority, run_uuid=run_uuid, parent_run_uuid=parent_run_uuid, pid=pid,
               remote_dir=remote_dir, exit_code=exit_code, error=error, cancel_requested=bool(cancel_requested),
               created_at=created_at, started_at=started_at, ended_at=ended_at, log_offset=log_offset,
               spool_offset=spool_offset, last_contact_at=last_contact_at, work_subdir=work_subdir)


@dataclass
class CommandOutcome:
    """What an external command (local or over SSH) came to: state, exit code and captured output."""

    state: str  # succeeded | failed | crashed (killed by a signal or the connection dropped)
    exit_code: int | None
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "succeeded"

    @classmethod
    def from_exit(cls, exit_code: int | None, stdout: str, stderr: str) -> CommandOutcome:
        if exit_code is None or exit_code < 0:
            return cls("crashed", exit_code, stdout, stderr)
        return cls("succeeded" if exit_code == 0 else "failed", exit_code, stdout, stderr)
