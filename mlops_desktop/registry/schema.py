"""Registry tables: registered models, their versions (one content-hashed bundle each), metrics and dataset lineage
copied from the run, and aliases. Every change is also an event in the audit log (0004_audit)."""

from mlops_desktop.store.migrations import Migration

REGISTRY_V1 = """
CREATE TABLE registered_models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL
);
-- A version is immutable: its bundle (paths.models/<bundle_hash>/) holds the files, flavor, signature, environment.
CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    version INTEGER NOT NULL CHECK (version >= 1),
    bundle_hash TEXT NOT NULL,
    flavor TEXT NOT NULL,
    serving_path TEXT NOT NULL,
    signature TEXT NOT NULL,
    run_uuid TEXT,
    artifact_path TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '{}',
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (model_id, version),
    UNIQUE (model_id, bundle_hash)
);
CREATE INDEX model_versions_run ON model_versions(run_uuid);
CREATE INDEX model_versions_bundle ON model_versions(bundle_hash);
-- The run's metrics (last value of each series) when the version was made: compare versions without the run.
CREATE TABLE model_version_metrics (
    version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (version_id, key)
) WITHOUT ROWID;
-- The dataset versions the run read: a version links back to its data, and a dataset lists the models made from it.
CREATE TABLE model_version_inputs (
    version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    dataset TEXT NOT NULL,
    dataset_version TEXT NOT NULL,
    digest TEXT NOT NULL DEFAULT '',
    context TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (version_id, dataset, dataset_version, context)
) WITHOUT ROWID;
CREATE INDEX model_version_inputs_dataset ON model_version_inputs(dataset, dataset_version);
-- One alias names one version; its history is in audit_events (kind model.alias.*).
CREATE TABLE model_aliases (
    model_id INTEGER NOT NULL REFERENCES registered_models(id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES model_versions(id),
    updated_by TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (model_id, alias)
) WITHOUT ROWID;
CREATE INDEX model_aliases_version ON model_aliases(version_id);
"""

MIGRATIONS = [Migration("0005_registry", REGISTRY_V1)]
