-- Triggers start workflow runs: webhooks, cron schedules, and "when another
-- workflow's run finishes". A trigger goes with the workflow it starts and
-- with the workflow it follows.
CREATE TABLE triggers (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    workflow_id        TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL,      -- webhook, cron, workflow_finished
    config             TEXT NOT NULL,      -- JSON, the kind's settings (TEXT: see 001_init)
    secret             BYTEA,              -- webhook: the sealed secret
    source_workflow_id TEXT COLLATE "C" REFERENCES workflows (id) ON DELETE CASCADE,
    -- cron: Unix nanoseconds of the next tick. Not TIMESTAMPTZ: claiming a
    -- tick compares it for equality with the value a scheduler read, and
    -- the store keeps it to the nanosecond, as SQLite does.
    next_fire_at       BIGINT,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX triggers_by_workflow ON triggers (workflow_id);
CREATE INDEX triggers_by_source ON triggers (source_workflow_id) WHERE source_workflow_id IS NOT NULL;
CREATE INDEX triggers_due ON triggers (next_fire_at) WHERE next_fire_at IS NOT NULL;

-- Webhook deliveries that carried an Idempotency-Key, and the run each
-- started ('' while the run is being started).
CREATE TABLE webhook_deliveries (
    trigger_id      TEXT COLLATE "C" NOT NULL REFERENCES triggers (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    run_id          TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (trigger_id, idempotency_key)
);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (created_at);
