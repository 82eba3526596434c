-- Datasets (server/datasets): named collections of labelled text
-- examples. Each upload makes an immutable version whose files live on the
-- server's disk under <data dir>/datasets/<dataset_id>/<version>/; the row
-- keeps its meta.json, so listings need no disk reads.
CREATE TABLE datasets (
    id         TEXT COLLATE "C" PRIMARY KEY,  -- ds_ + hex
    name       TEXT NOT NULL,
    -- One more than the highest version ever created: a deleted
    -- version's number is never given to other data.
    next_version INTEGER NOT NULL DEFAULT 1,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE dataset_versions (
    dataset_id TEXT COLLATE "C" NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,              -- 1, 2, 3, … in upload order
    rows       BIGINT NOT NULL,
    meta       JSONB NOT NULL,                -- the version's meta.json
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (dataset_id, version)
);
