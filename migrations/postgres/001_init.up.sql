-- The PostgreSQL schema mirrors migrations/sqlite one file for one file;
-- the store's conformance suite holds both backends to the same behaviour.
--
-- Types, and why:
--   * JSON documents (manifests, grants, scopes, drafts, run inputs and
--     outputs) are TEXT, not JSONB or JSON. The store hands back exactly the
--     bytes it was given, as SQLite does: JSONB would reorder keys, drop
--     duplicates and reject \u0000, and JSON would reject the empty
--     documents SQLite accepts. Nothing queries inside these documents, so
--     JSONB's operators would buy nothing.
--   * Identifiers that lists are ordered by are COLLATE "C": byte order, as
--     in SQLite, whatever locale the database was created with.
--   * Times are TIMESTAMPTZ (microseconds; the store returns them in UTC).
--   * KV keys are BYTEA: guests may use any UTF-8, including U+0000, which
--     TEXT cannot hold, and the quota counts their bytes.

-- API tokens: only the SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    id           TEXT COLLATE "C" PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BYTEA NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,            -- JSON array of scope names
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ
);

-- Module binaries, content-addressed so that two versions with the same
-- bytes share one row and uploads of the same bytes are idempotent.
CREATE TABLE module_blobs (
    sha256     TEXT PRIMARY KEY,
    wasm       BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- One row per module version; versions are immutable.
CREATE TABLE module_versions (
    module_id  TEXT COLLATE "C" NOT NULL,
    version    TEXT COLLATE "C" NOT NULL,
    sha256     TEXT NOT NULL REFERENCES module_blobs (sha256),
    size       BIGINT NOT NULL,
    manifest   TEXT NOT NULL,              -- the manifest as uploaded (JSON)
    grant_json TEXT,                       -- NULL until an admin grants
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (module_id, version)
);
-- DeleteModuleVersion asks whether any version still uses a blob.
CREATE INDEX module_versions_by_sha256 ON module_versions (sha256);

-- Each module's key-value namespace.
CREATE TABLE kv_entries (
    namespace  TEXT NOT NULL,
    key        BYTEA NOT NULL,
    value      BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (namespace, key)
);

-- Secrets, sealed with AES-256-GCM under a key kept outside the database.
CREATE TABLE secrets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
