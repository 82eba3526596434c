-- Artifacts are values too large to keep inline in a checkpoint (a node's
-- output or input, a run's output): their bytes live here, and the
-- checkpoint keeps a small reference. They go with their run.
CREATE TABLE artifacts (
    id           TEXT PRIMARY KEY,           -- art_ + hex
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id      TEXT NOT NULL DEFAULT '',   -- '' for the run's own artifacts
    name         TEXT NOT NULL,              -- output, input
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,              -- hex
    data         BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (run_id, node_id, name)
);

-- Retention deletes finished runs by age.
CREATE INDEX runs_by_finished ON runs (finished_at);
