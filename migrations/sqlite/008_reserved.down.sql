-- Placeholder for migration 8 (see 008_reserved.up.sql).
SELECT 1;
