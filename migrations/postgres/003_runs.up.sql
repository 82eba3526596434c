-- Workflow runs and every node execution in them: the engine's checkpoints.
-- JSON is kept as TEXT, byte for byte (see 001_init).
CREATE TABLE runs (
    id          TEXT COLLATE "C" PRIMARY KEY,
    workflow_id TEXT COLLATE "C" NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL,             -- queued, running, succeeded, failed, canceled
    input       TEXT NOT NULL,             -- JSON
    output      TEXT,                      -- JSON, when finished
    error       TEXT NOT NULL DEFAULT '',
    trigger     TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX runs_by_workflow ON runs (workflow_id, created_at);

CREATE TABLE node_runs (
    run_id      TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id     TEXT COLLATE "C" NOT NULL,
    status      TEXT NOT NULL,             -- running, succeeded, failed, skipped, canceled
    attempts    INTEGER NOT NULL DEFAULT 0,
    input       TEXT,                      -- JSON
    output      TEXT,                      -- JSON
    port        TEXT NOT NULL DEFAULT '',
    logs        TEXT,                      -- JSON array of log records
    error       TEXT NOT NULL DEFAULT '',
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (run_id, node_id)
);
