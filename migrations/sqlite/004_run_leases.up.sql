-- A run is executed by one worker at a time: the one holding its lease.
-- lease_until is Unix nanoseconds, so it compares as a number.
ALTER TABLE runs ADD COLUMN lease_owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until INTEGER;
CREATE INDEX runs_by_status ON runs (status, lease_until);
