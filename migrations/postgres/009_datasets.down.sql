DROP TABLE dataset_versions;
DROP TABLE datasets;
