-- The whole schema for PostgreSQL, the same tables as the SQLite migrations
-- end with (migrations/sqlite), in one step: no PostgreSQL database predates
-- it. Times are Unix seconds.

-- Usernames are unique without regard to case and stored as entered: the
-- column's collation compares case-insensitively (as SQLite's NOCASE does).
CREATE COLLATION IF NOT EXISTS portcullis_nocase (
    provider = icu, locale = 'und-u-ks-level2', deterministic = false
);
CREATE TABLE users (
    id SERIAL PRIMARY KEY,
    username TEXT NOT NULL COLLATE portcullis_nocase UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
);

-- Development only: the generated JWT key, kept so a restart logs nobody out
-- and every instance signs with the same one.
CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- One row per session (a login, rotated any number of times); see
-- migrations/sqlite/2026-12-01-000004_one_row_sessions.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    rotated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    user_agent TEXT NOT NULL,
    ip TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Only SQLite databases upgraded from the first release have rows here; the
-- table exists so both backends share one schema.
CREATE TABLE legacy_refresh_tokens (
    jti TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The login and registration limits, shared by every instance.
CREATE TABLE limit_counters (
    key TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits INTEGER NOT NULL
);
CREATE INDEX limit_counters_window ON limit_counters (window_start);
