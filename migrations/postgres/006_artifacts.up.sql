-- Artifacts are values too large to keep inline in a checkpoint (a node's
-- output or input, a run's output): their bytes live here, and the
-- checkpoint keeps a small reference. They go with their run. Large
-- values are TOASTed (stored out of line, compressed), which a VACUUM
-- after retention makes reusable.
CREATE TABLE artifacts (
    id           TEXT COLLATE "C" PRIMARY KEY,           -- art_ + hex
    run_id       TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    node_id      TEXT COLLATE "C" NOT NULL DEFAULT '',   -- '' for the run's own artifacts
    name         TEXT COLLATE "C" NOT NULL,              -- output, input
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       TEXT NOT NULL,                          -- hex
    data         BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (run_id, node_id, name)
);

-- Retention deletes finished runs by age.
CREATE INDEX runs_by_finished ON runs (finished_at);
