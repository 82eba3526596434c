-- Placeholder: number 8 belongs to another branch's migration. When that
-- branch merges, delete this file and its .down.sql (two files numbered 8
-- would make one of them silently lost).
SELECT 1;
