-- Workflows: one editable draft each, and immutable published versions.
CREATE TABLE workflows (
    id             TEXT PRIMARY KEY,
    draft          TEXT NOT NULL,           -- JSON definition
    latest_version INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,              -- JSON definition
    created_at  TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);
