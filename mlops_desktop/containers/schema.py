"""The containers capability's tables, as named migrations (composed by mlops_desktop/schema.py): the images built
for model versions (tag, image id, size, build time, smoke-test figures) and where each was pushed (digest)."""

from __future__ import annotations

from mlops_desktop.store.migrations import Migration

CONTAINERS_V1 = """
-- One row per image tag on one engine; building the same tag again replaces the row (the tag moved).
CREATE TABLE model_images (
    id INTEGER PRIMARY KEY,
    version_id INTEGER REFERENCES model_versions(id) ON DELETE CASCADE,  -- NULL for a router image
    model TEXT NOT NULL DEFAULT '',
    version INTEGER,
    bundle_hash TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('model', 'router')),
    tag TEXT NOT NULL,
    engine TEXT NOT NULL,
    image_id TEXT NOT NULL,
    base TEXT NOT NULL,
    base_id TEXT NOT NULL DEFAULT '',
    deps_key TEXT NOT NULL DEFAULT '',
    size_bytes INTEGER NOT NULL,
    build_seconds REAL NOT NULL,
    steps INTEGER NOT NULL DEFAULT 0,
    cached_steps INTEGER NOT NULL DEFAULT 0,
    options TEXT NOT NULL DEFAULT '{}',
    smoke TEXT,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (tag, engine)
);
CREATE INDEX model_images_version ON model_images(version_id);
CREATE INDEX model_images_image ON model_images(image_id);
-- The latest push of an image to each registry: the reference pushed and the digest the registry answered.
CREATE TABLE model_image_pushes (
    image INTEGER NOT NULL REFERENCES model_images(id) ON DELETE CASCADE,
    registry TEXT NOT NULL,
    reference TEXT NOT NULL,
    digest TEXT NOT NULL,
    pushed_by TEXT NOT NULL,
    pushed_at REAL NOT NULL,
    PRIMARY KEY (image, registry)
) WITHOUT ROWID;
CREATE INDEX model_image_pushes_digest ON model_image_pushes(digest);
"""

MIGRATIONS: list[Migration] = [Migration("0009_containers", CONTAINERS_V1)]
