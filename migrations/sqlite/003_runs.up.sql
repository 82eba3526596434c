-- Workflow runs and every node execution in them: the engine's checkpoints.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL,             -- queued, running, succeeded, failed, canceled
    input       TEXT NOT NULL,             -- JSON
    output      TEXT,                      -- JSON, when finished
    error       TEXT NOT NULL DEFAULT '',
    trigger     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX runs_by_workflow ON runs (workflow_id, created_at);

CREATE TABLE node_runs (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id     TEXT NOT NULL,
    status      TEXT NOT NULL,             -- running, succeeded, failed, skipped, canceled
    attempts    INTEGER NOT NULL DEFAULT 0,
    input       TEXT,                      -- JSON
    output      TEXT,                      -- JSON
    port        TEXT NOT NULL DEFAULT '',
    logs        TEXT,                      -- JSON array of log records
    error       TEXT NOT NULL DEFAULT '',
    started_at  TEXT,
    finished_at TEXT,
    PRIMARY KEY (run_id, node_id)
);
