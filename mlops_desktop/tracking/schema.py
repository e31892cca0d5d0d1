"""Tracking tables: experiments, runs, params, tags, packed metric series, artifacts, dataset inputs, spool imports."""

from mlops_desktop.store.migrations import Migration

TRACKING_V1 = """
CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    deleted_at REAL
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'failed', 'killed', 'lost')),
    host TEXT NOT NULL DEFAULT '',
    user TEXT NOT NULL DEFAULT '',
    command TEXT NOT NULL DEFAULT '',
    git_commit TEXT,
    git_dirty INTEGER,
    pid INTEGER,
    pid_start INTEGER,
    start_time REAL NOT NULL,
    end_time REAL,
    heartbeat REAL,
    parent_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    notes TEXT NOT NULL DEFAULT '',
    deleted_at REAL
);
CREATE INDEX runs_experiment_start ON runs(experiment_id, start_time);
CREATE INDEX runs_start ON runs(start_time);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_parent ON runs(parent_id);
CREATE TABLE params (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    value_num REAL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX params_key_num ON params(key, value_num);
CREATE INDEX params_key_value ON params(key, value);
CREATE TABLE tags (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX tags_key_value ON tags(key, value);
CREATE TABLE metric_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
-- One row per (run, metric): the summary that search, ordering and the runs table read.
CREATE TABLE metric_series (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key_id INTEGER NOT NULL REFERENCES metric_keys(id),
    count INTEGER NOT NULL,
    last_value REAL,
    last_step INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    min_value REAL,
    max_value REAL,
    PRIMARY KEY (run_id, key_id)
) WITHOUT ROWID;
CREATE INDEX metric_series_key_last ON metric_series(key_id, last_value);
CREATE INDEX metric_series_key_min ON metric_series(key_id, min_value);
CREATE INDEX metric_series_key_max ON metric_series(key_id, max_value);
-- Packed points: each chunk holds up to 65,536 points of one series as encoded columns (see packing.py).
CREATE TABLE metric_chunks (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key_id INTEGER NOT NULL REFERENCES metric_keys(id),
    seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    step_first INTEGER NOT NULL,
    step_last INTEGER NOT NULL,
    ts_first INTEGER NOT NULL,
    ts_last INTEGER NOT NULL,
    vmin REAL,
    vmax REAL,
    steps BLOB NOT NULL,
    ts BLOB NOT NULL,
    vals BLOB NOT NULL,
    UNIQUE (run_id, key_id, seq)
);
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, path)
) WITHOUT ROWID;
CREATE INDEX artifacts_digest ON artifacts(digest);
-- Which dataset versions a run read (lineage); the data lake's catalog refers to the same names.
CREATE TABLE run_inputs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL DEFAULT '',
    context TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, dataset, version, context)
) WITHOUT ROWID;
CREATE INDEX run_inputs_dataset ON run_inputs(dataset, version);
-- High-water mark of every imported spool, so that importing it again adds nothing.
CREATE TABLE spool_imports (
    spool_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
"""

# What MLflow's tracking API has and the first schema did not: experiment tags, MLflow dataset fields on run
# inputs, and MLflow 3's logged models (a model logged by a run, with its own artifacts).
TRACKING_MLFLOW = """
CREATE TABLE experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
) WITHOUT ROWID;
ALTER TABLE run_inputs ADD COLUMN source_type TEXT NOT NULL DEFAULT '';
ALTER TABLE run_inputs ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE run_inputs ADD COLUMN schema TEXT NOT NULL DEFAULT '';
ALTER TABLE run_inputs ADD COLUMN profile TEXT NOT NULL DEFAULT '';
CREATE TABLE logged_models (
    id INTEGER PRIMARY KEY,
    model_id TEXT NOT NULL UNIQUE,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL,
    source_run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
    model_type TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'PENDING',
    status_message TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    params TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deleted_at REAL
);
CREATE INDEX logged_models_run ON logged_models(source_run_id);
CREATE INDEX logged_models_experiment ON logged_models(experiment_id);
CREATE TABLE logged_model_artifacts (
    model_id INTEGER NOT NULL REFERENCES logged_models(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (model_id, path)
) WITHOUT ROWID;
CREATE INDEX logged_model_artifacts_digest ON logged_model_artifacts(digest);
CREATE TABLE run_outputs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model_id INTEGER NOT NULL REFERENCES logged_models(id) ON DELETE CASCADE,
    step INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, model_id)
) WITHOUT ROWID;
"""

MIGRATIONS = [Migration("0001_tracking", TRACKING_V1)]
MLFLOW_MIGRATIONS = [Migration("0008_tracking_mlflow", TRACKING_MLFLOW)]
