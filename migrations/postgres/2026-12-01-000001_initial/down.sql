DROP TABLE limit_counters;
DROP TABLE legacy_refresh_tokens;
DROP TABLE sessions;
DROP TABLE app_secrets;
DROP TABLE users;
DROP COLLATION IF EXISTS portcullis_nocase;
