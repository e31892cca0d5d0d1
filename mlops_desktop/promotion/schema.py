"""The promotion capability's tables, as named migrations (composed by mlops_desktop/schema.py)."""

from __future__ import annotations

from mlops_desktop.store.migrations import Migration

PROMOTION_V1 = """
-- One candidate going through a policy: its checks, then the review queue, then a decision.
CREATE TABLE promotion_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    policy TEXT NOT NULL,                 -- the policy's name ([promotion.NAME] in mlops.toml)
    policy_json TEXT NOT NULL,            -- the policy as it was when the request started (resumes use this)
    state TEXT NOT NULL,                  -- pending|running|waiting|failed|review|approved|rejected|expired|cancelled
    trigger TEXT NOT NULL,                -- manual | new-version | alias:NAME
    champion_version INTEGER,             -- what the promoted alias named when the request started
    candidate_by TEXT NOT NULL,           -- who registered the candidate version
    requested_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    review_at REAL,                       -- entered the review queue
    expires_at REAL,
    decided_at REAL,
    message TEXT NOT NULL DEFAULT '',     -- the latest state change in words
    runner_pid INTEGER,                   -- the process running the checks now (a dead one is taken over)
    outcome_json TEXT NOT NULL DEFAULT '{}'  -- what approval did: alias move, deployments updated
);
CREATE INDEX promotion_requests_state ON promotion_requests(state, id);
CREATE INDEX promotion_requests_model ON promotion_requests(model, version);

CREATE TABLE promotion_checks (
    request_id INTEGER NOT NULL REFERENCES promotion_requests(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,                  -- pending | running | waiting | passed | failed
    summary TEXT NOT NULL DEFAULT '',
    evidence_json TEXT NOT NULL DEFAULT '{}',
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (request_id, position)
);

-- Approvals and rejections: who (OS user and display name), when, why.
CREATE TABLE promotion_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES promotion_requests(id) ON DELETE CASCADE,
    actor TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL,               -- approve | reject
    comment TEXT NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX promotion_decisions_request ON promotion_decisions(request_id, id);

-- Live samples of the shadow comparison kept with the review (disagreements first), so the evidence survives the
-- prediction logs' retention; labels refer to them.
CREATE TABLE promotion_samples (
    request_id INTEGER NOT NULL REFERENCES promotion_requests(id) ON DELETE CASCADE,
    sample INTEGER NOT NULL,              -- 1, 2, ... in review order (disagreements first)
    source_request TEXT NOT NULL,         -- the served request's id
    source_row INTEGER NOT NULL,
    ts REAL NOT NULL,
    inputs_json TEXT NOT NULL,
    champion_json TEXT NOT NULL,          -- the champion's answer (JSON value)
    candidate_json TEXT NOT NULL,
    agree INTEGER NOT NULL,
    PRIMARY KEY (request_id, sample)
);

CREATE TABLE promotion_labels (
    request_id INTEGER NOT NULL,
    sample INTEGER NOT NULL,
    label_json TEXT NOT NULL,             -- the right answer (JSON value)
    picked TEXT NOT NULL,                 -- champion | candidate | typed
    actor TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (request_id, sample),
    FOREIGN KEY (request_id, sample) REFERENCES promotion_samples(request_id, sample) ON DELETE CASCADE
);

-- What the pipeline told people (a failed check, an expiry): the GUI shows the unread ones.
CREATE TABLE promotion_notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id INTEGER NOT NULL REFERENCES promotion_requests(id) ON DELETE CASCADE,
    ts REAL NOT NULL,
    level TEXT NOT NULL,                  -- info | warning | error
    message TEXT NOT NULL,
    read_at REAL
);
"""

MIGRATIONS: list[Migration] = [Migration("0012_promotion", PROMOTION_V1)]
