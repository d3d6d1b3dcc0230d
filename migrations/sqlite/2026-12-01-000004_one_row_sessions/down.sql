-- Back to one row per token. Only each session's live token survives (older
-- generations were never stored); tokens issued after the upgrade carry a
-- generation the old code ignores, so their sessions must log in again.
CREATE TABLE refresh_families (
    id TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    user_agent TEXT NOT NULL,
    ip TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX refresh_families_user ON refresh_families (user_id, revoked_at);
CREATE TABLE refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    family_id TEXT NOT NULL REFERENCES refresh_families (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
INSERT INTO refresh_families (id, user_id, created_at, last_used_at, user_agent, ip, revoked_at)
SELECT id, user_id, created_at, last_used_at, user_agent, ip, revoked_at FROM sessions;
INSERT INTO refresh_tokens (jti, family_id, user_id, issued_at, expires_at, used_at)
SELECT l.jti, l.session_id, s.user_id, s.rotated_at, l.expires_at, NULL
FROM legacy_refresh_tokens l JOIN sessions s ON s.id = l.session_id
WHERE l.generation = s.generation;
DROP TABLE legacy_refresh_tokens;
DROP TABLE sessions;
