DROP INDEX runs_by_finished;
DROP TABLE artifacts;
