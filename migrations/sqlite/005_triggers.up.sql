-- Triggers start workflow runs: webhooks, cron schedules, and "when another
-- workflow's run finishes". A trigger goes with the workflow it starts and
-- with the workflow it follows.
CREATE TABLE triggers (
    id                 TEXT PRIMARY KEY,
    workflow_id        TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,      -- webhook, cron, workflow_finished
    config             TEXT NOT NULL,      -- JSON, the kind's settings
    secret             BLOB,               -- webhook: the sealed secret
    source_workflow_id TEXT REFERENCES workflows (id) ON DELETE CASCADE,
    next_fire_at       INTEGER,            -- cron: Unix nanoseconds of the next tick
    created_at         TEXT NOT NULL
);
CREATE INDEX triggers_by_workflow ON triggers (workflow_id);
CREATE INDEX triggers_by_source ON triggers (source_workflow_id) WHERE source_workflow_id IS NOT NULL;
CREATE INDEX triggers_due ON triggers (next_fire_at) WHERE next_fire_at IS NOT NULL;

-- Webhook deliveries that carried an Idempotency-Key, and the run each
-- started ('' while the run is being started).
CREATE TABLE webhook_deliveries (
    trigger_id      TEXT NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    run_id          TEXT NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,   -- Unix nanoseconds
    PRIMARY KEY (trigger_id, idempotency_key)
);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);
