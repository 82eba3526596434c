-- Training jobs (server/training): a model trained by the accelerator
-- service on a dataset version. The job's checkpoints and exported model
-- live on the server's disk under <data dir>/training/<id>/; the row
-- keeps what the API shows: the request, the state, one event per
-- finished epoch, and the result.
CREATE TABLE training_jobs (
    id              TEXT COLLATE "C" PRIMARY KEY,  -- tj_ + hex
    task            TEXT NOT NULL,
    dataset_id      TEXT COLLATE "C" NOT NULL,
    dataset_version INTEGER NOT NULL,
    model_name      TEXT NOT NULL,                 -- registered under this name on success
    hyperparameters JSONB NOT NULL,                -- defaults filled in
    state           TEXT NOT NULL,                 -- queued, running, succeeded, failed, cancelled
    error           TEXT NOT NULL DEFAULT '',
    events          JSONB NOT NULL DEFAULT '[]',   -- one object per finished epoch
    result          JSONB,                         -- on success
    output_dir      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX training_jobs_dataset ON training_jobs (dataset_id, dataset_version);
CREATE INDEX training_jobs_model ON training_jobs (model_name);
