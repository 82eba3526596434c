-- Console users. Passwords are argon2id hashes in the PHC string format
-- ($argon2id$v=19$m=…,t=…,p=…$salt$hash); '' means the user cannot sign in
-- with a password (the bootstrap admin until one is set).
CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,  -- usr_ + hex
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    role          TEXT NOT NULL,                 -- admin, editor, operator or viewer
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Tokens may belong to a user (NULL: a token from before users existed)
-- and may carry a role instead of explicit scopes, so that scopes added to
-- the role later reach the token. No foreign key, as in SQLite: DeleteUser
-- removes a user's tokens itself.
ALTER TABLE api_tokens ADD COLUMN user_id TEXT;
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;

-- Console sessions. Only the SHA-256 of the session id (the cookie value)
-- is stored. A session belongs to a user (password sign-in) or to a token
-- (sign-in with a token), and dies with it.
CREATE TABLE sessions (
    hash         BYTEA PRIMARY KEY,
    user_id      TEXT,
    token_id     TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,         -- updated at most once a minute
    expires_at   TIMESTAMPTZ NOT NULL          -- the absolute lifetime's end
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_token ON sessions (token_id);

-- The audit log: append-only. The store has no method that updates or
-- deletes a row, except pruning by age.
CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    actor_id   TEXT NOT NULL,                  -- usr_…, tok_… or '' (unknown, system)
    actor_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    outcome    TEXT NOT NULL,                  -- success, failure or denied
    client_ip  TEXT NOT NULL,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_log_by_at ON audit_log (at);
