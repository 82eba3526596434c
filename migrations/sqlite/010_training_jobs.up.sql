-- Training jobs (server/training): a model trained by the accelerator
-- service on a dataset version. The job's checkpoints and exported model
-- live on the server's disk under <data dir>/training/<id>/; the row
-- keeps what the API shows: the request, the state, one event per
-- finished epoch, and the result.
CREATE TABLE training_jobs (
    id              TEXT PRIMARY KEY,          -- tj_ + hex
    task            TEXT NOT NULL,
    dataset_id      TEXT NOT NULL,
    dataset_version INTEGER NOT NULL,
    model_name      TEXT NOT NULL,             -- registered under this name on success
    hyperparameters TEXT NOT NULL,             -- JSON, defaults filled in
    state           TEXT NOT NULL,             -- queued, running, succeeded, failed, cancelled
    error           TEXT NOT NULL DEFAULT '',
    events          TEXT NOT NULL DEFAULT '[]', -- JSON array: one object per finished epoch
    result          TEXT,                      -- JSON, on success
    output_dir      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);
CREATE INDEX training_jobs_dataset ON training_jobs (dataset_id, dataset_version);
CREATE INDEX training_jobs_model ON training_jobs (model_name);
