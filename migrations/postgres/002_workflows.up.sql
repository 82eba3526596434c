-- Workflows: one editable draft each, and immutable published versions.
-- Definitions are JSON kept as TEXT, byte for byte (see 001_init).
CREATE TABLE workflows (
    id             TEXT COLLATE "C" PRIMARY KEY,
    draft          TEXT NOT NULL,           -- JSON definition
    latest_version INTEGER NOT NULL DEFAULT 0,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE workflow_versions (
    workflow_id TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,              -- JSON definition
    created_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (workflow_id, version)
);
