DROP TABLE training_jobs;
