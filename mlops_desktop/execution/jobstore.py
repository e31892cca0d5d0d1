"""Persistence of jobs: submit, claim for start (GPU assignment under one write lock), state changes, offsets."""

from __future__ import annotations

import builtins
import json
import time
from typing import Any

from mlops_desktop.execution.errors import JobNotFoundError
from mlops_desktop.execution.models import (
    ACTIVE_STATES,
    FINAL_STATES,
    JOB_COLUMNS,
    QUEUED,
    STARTING,
    Host,
    Job,
    job_from_row,
)


class JobStore:
    """The `jobs` table of one workspace."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.db = ws.db

    def add(self, *, host: str, kind: str, argv: list[str], name: str = "", experiment: str = "",
            project_dir: str = "", params: dict[str, str] | None = None, gpus: int = 0, priority: int = 0,
            parent_run_uuid: str | None = None, work_subdir: str = "") -> Job:
        def tx(conn: Any) -> int:
            cur = conn.execute(
                "INSERT INTO jobs (host, state, kind, argv, name, experiment, project_dir, params, gpus_requested, "
                "priority, parent_run_uuid, created_at, work_subdir) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                "?, ?)",
                (host, kind, json.dumps(argv), name, experiment, project_dir, json.dumps(params or {}), gpus,
                 priority, parent_run_uuid, time.time(), work_subdir))
            return int(cur.lastrowid)

        return self.get(self.db.write(tx))

    def get(self, job_id: int) -> Job:
        rows = self.db.query(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (int(job_id),))
        if not rows:
            raise JobNotFoundError(f"no job {job_id} in this workspace", hint="list them with: mlops-desktop jobs list")
        return job_from_row(rows[0])

    def list(self, *, states: tuple[str, ...] | None = None, host: str | None = None,
             parent_run_uuid: str | None = None, limit: int = 200) -> list[Job]:
        where, params = [], []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            params += list(states)
        if host:
            where.append("host = ?")
            params.append(host)
        if parent_run_uuid:
            where.append("parent_run_uuid = ?")
            params.append(parent_run_uuid)
        sql = f"SELECT {JOB_COLUMNS} FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
        rows = self.db.query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
        return [job_from_row(r) for r in rows]

    def update(self, job_id: int, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        self.db.write(lambda c: c.execute(f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id)))

    def finish(self, job_id: int, state: str, *, exit_code: int | None = None, error: str = "",
               ended_at: float | None = None) -> bool:
        """Move an active or queued job to a final state; False when it already was final (another process won)."""
        assert state in FINAL_STATES, state

        def tx(conn: Any) -> bool:
            cur = conn.execute(
                "UPDATE jobs SET state = ?, exit_code = coalesce(?, exit_code), error = CASE WHEN ? = '' THEN error "
                "ELSE ? END, ended_at = ? WHERE id = ? AND state NOT IN ('succeeded', 'failed', 'cancelled', 'lost')",
                (state, exit_code, error, error, ended_at or time.time(), job_id))
            return cur.rowcount == 1

        return bool(self.db.write(tx))

    def claim_startable(self, hosts: dict[str, Host], only_host: str | None = None) -> builtins.list[Job]:
        """Atomically move the queued jobs that fit (host concurrency, free GPUs) to 'starting', highest priority
        first, and assign their GPUs. Safe against other processes doing the same (one write transaction)."""

        def tx(conn: Any) -> builtins.list[int]:
            queued = conn.execute(
                "SELECT id, host, gpus_requested FROM jobs WHERE state = 'queued'"
                + (" AND host = ?" if only_host else "") + " ORDER BY priority DESC, id",
                (only_host,) if only_host else ()).fetchall()
            if not queued:
                return []
            active: dict[str, int] = {}
            used: dict[str, set[str]] = {}
            for host, gpu_ids in conn.execute(
                    f"SELECT host, gpu_ids FROM jobs WHERE state IN ({','.join('?' * len(ACTIVE_STATES))})",
                    ACTIVE_STATES):
                active[host] = active.get(host, 0) + 1
                used.setdefault(host, set()).update(g for g in gpu_ids.split(",") if g)
            claimed = []
            now = time.time()
            for job_id, host_name, gpus_requested in queued:
                host = hosts.get(host_name)
                if host is None or active.get(host_name, 0) >= host.max_jobs:
                    continue
                assigned = ""
                if gpus_requested:
                    inv = host.inventory
                    gpus = inv.gpus if inv else []
                    # a GPU none of our jobs holds, yet with compute processes on it, belongs to someone else
                    foreign = {p.gpu_uuid for p in inv.gpu_processes} if inv else set()
                    free = [str(g.index) for g in gpus
                            if str(g.index) not in used.get(host_name, set()) and g.uuid not in foreign]
                    if len(free) < gpus_requested:
                        continue
                    picked = free[:gpus_requested]
                    used.setdefault(host_name, set()).update(picked)
                    assigned = ",".join(picked)
                conn.execute("UPDATE jobs SET state = ?, gpu_ids = ?, started_at = ? WHERE id = ? AND state = ?",
                             (STARTING, assigned, now, job_id, QUEUED))
                active[host_name] = active.get(host_name, 0) + 1
                claimed.append(int(job_id))
            return claimed

        return [self.get(i) for i in self.db.write(tx)]

    def request_cancel(self, job_id: int) -> Job:
        self.db.write(lambda c: c.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,)))
        return self.get(job_id)
