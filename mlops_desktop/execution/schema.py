"""Execution tables: hosts (local and SSH) with their last inventory, and jobs with their stream offsets."""

from mlops_desktop.store.migrations import Migration

EXECUTION_V1 = """
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('local', 'ssh')),
    hostname TEXT NOT NULL DEFAULT '',
    port INTEGER NOT NULL DEFAULT 22,
    user TEXT NOT NULL DEFAULT '',
    identity_file TEXT NOT NULL DEFAULT '',
    proxy_jump TEXT NOT NULL DEFAULT '',
    python TEXT NOT NULL DEFAULT 'python3',
    work_dir TEXT NOT NULL DEFAULT '',
    max_jobs INTEGER NOT NULL DEFAULT 1 CHECK (max_jobs >= 1),
    inventory TEXT,
    inventory_at REAL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
INSERT INTO hosts (name, kind, python, created_at) VALUES ('local', 'local', '', 0);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'starting', 'running', 'succeeded', 'failed', 'cancelled', 'lost')),
    kind TEXT NOT NULL CHECK (kind IN ('command', 'script', 'recipe')),
    argv TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    experiment TEXT NOT NULL DEFAULT '',
    project_dir TEXT NOT NULL DEFAULT '',
    params TEXT NOT NULL DEFAULT '{}',
    gpus_requested INTEGER NOT NULL DEFAULT 0 CHECK (gpus_requested >= 0),
    gpu_ids TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 0,
    run_uuid TEXT,
    parent_run_uuid TEXT,
    pid INTEGER,
    remote_dir TEXT NOT NULL DEFAULT '',
    exit_code INTEGER,
    error TEXT NOT NULL DEFAULT '',
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    log_offset INTEGER NOT NULL DEFAULT 0,
    spool_offset INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_state ON jobs(state, priority, id);
CREATE INDEX jobs_host_state ON jobs(host, state);
CREATE INDEX jobs_parent ON jobs(parent_run_uuid);
"""

MIGRATIONS = [Migration("0003_execution", EXECUTION_V1)]

# When each SSH job and host last answered (a listing shows a job's state as of then, and a host that did not
# answer), and the folder a job runs in inside its project (submitted from a subfolder of the project root).
CONTACT = """
ALTER TABLE jobs ADD COLUMN last_contact_at REAL;
ALTER TABLE jobs ADD COLUMN work_subdir TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN last_contact_at REAL;
ALTER TABLE hosts ADD COLUMN contact_error TEXT NOT NULL DEFAULT '';
"""

CONTACT_MIGRATIONS = [Migration("0007_execution_contact", CONTACT)]
