DROP TABLE secrets;
DROP TABLE kv_entries;
DROP TABLE module_versions;
DROP TABLE module_blobs;
DROP TABLE api_tokens;
