DROP TABLE audit_log;
DROP TABLE sessions;
ALTER TABLE api_tokens DROP COLUMN expires_at;
ALTER TABLE api_tokens DROP COLUMN role;
ALTER TABLE api_tokens DROP COLUMN user_id;
DROP TABLE users;
