-- A run is executed by one worker at a time: the one holding its lease.
-- (SQLite keeps lease_until as Unix nanoseconds to compare it as a number;
-- TIMESTAMPTZ compares natively.)
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until TIMESTAMPTZ;
CREATE INDEX runs_by_status ON runs (status, lease_until);
