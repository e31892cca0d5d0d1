"""Data-lake catalog tables: datasets, their immutable versions, version lineage and cached profiles."""

from mlops_desktop.store.migrations import Migration

DATA_CATALOG_V1 = """
CREATE TABLE datasets (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
-- One immutable Parquet version of a dataset; `path` is its directory relative to the lake.
CREATE TABLE dataset_versions (
    id INTEGER PRIMARY KEY,
    dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    path TEXT NOT NULL UNIQUE,
    schema_json TEXT NOT NULL,
    row_count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    source_json TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('replace', 'append', 'derive')),
    rows_in INTEGER NOT NULL,
    rows_rejected INTEGER NOT NULL,
    drift_json TEXT NOT NULL DEFAULT '[]',
    producer_step TEXT,
    producer_fingerprint TEXT,
    created_at REAL NOT NULL,
    UNIQUE (dataset_id, version)
);
CREATE INDEX dataset_versions_step ON dataset_versions(producer_step);
-- Lineage: the dataset versions a version was made from (append base, pipeline inputs).
CREATE TABLE dataset_lineage (
    child_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    parent_id INTEGER NOT NULL REFERENCES dataset_versions(id) ON DELETE CASCADE,
    PRIMARY KEY (child_id, parent_id)
) WITHOUT ROWID;
CREATE INDEX dataset_lineage_parent ON dataset_lineage(parent_id);
-- Column profiles are computed once per version (versions never change).
CREATE TABLE dataset_profiles (
    version_id INTEGER PRIMARY KEY REFERENCES dataset_versions(id) ON DELETE CASCADE,
    profile_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

MIGRATIONS = [Migration("0002_data_catalog", DATA_CATALOG_V1)]
