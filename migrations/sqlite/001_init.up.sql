-- API tokens: only the SHA-256 of each token is kept.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,            -- JSON array of scope names
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);

-- Module binaries, content-addressed so that two versions with the same
-- bytes share one row and uploads of the same bytes are idempotent.
CREATE TABLE module_blobs (
    sha256     TEXT PRIMARY KEY,
    wasm       BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- One row per module version; versions are immutable.
CREATE TABLE module_versions (
    module_id  TEXT NOT NULL,
    version    TEXT NOT NULL,
    sha256     TEXT NOT NULL REFERENCES module_blobs (sha256),
    size       INTEGER NOT NULL,
    manifest   TEXT NOT NULL,              -- the manifest as uploaded (JSON)
    grant_json TEXT,                       -- NULL until an admin grants
    created_at TEXT NOT NULL,
    PRIMARY KEY (module_id, version)
);

-- Each module's key-value namespace.
CREATE TABLE kv_entries (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);

-- Secrets, sealed with AES-256-GCM under a key kept outside the database.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
