-- One row per session (a login, rotated any number of times). `generation`
-- counts its rotations: the refresh token of generation N is the live one,
-- any older one is a replay. Rotation is one conditional UPDATE of this row,
-- so a session's storage stays constant however often it is refreshed.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    -- When the current generation was issued (the grace window counts from it).
    rotated_at BIGINT NOT NULL,
    -- When the current generation's refresh token expires.
    expires_at BIGINT NOT NULL,
    user_agent TEXT NOT NULL,
    ip TEXT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id, revoked_at);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- The sessions of the previous schema keep working: each becomes one row,
-- its generation the number of tokens it had issued (the live one last).
INSERT INTO sessions (id, user_id, generation, created_at, last_used_at, rotated_at,
                      expires_at, user_agent, ip, revoked_at)
SELECT f.id, f.user_id,
       (SELECT COUNT(*) FROM refresh_tokens t WHERE t.family_id = f.id),
       f.created_at, f.last_used_at,
       COALESCE((SELECT MAX(t.issued_at) FROM refresh_tokens t WHERE t.family_id = f.id),
                f.created_at),
       COALESCE((SELECT MAX(t.expires_at) FROM refresh_tokens t WHERE t.family_id = f.id),
                f.created_at),
       f.user_agent, f.ip, f.revoked_at
FROM refresh_families f;

-- Their refresh tokens carry no generation: this maps each one (by `jti`) to
-- its session and generation, so the live one still rotates and a retired one
-- replayed after the upgrade is still recognised as reuse. Nothing is added
-- here after the upgrade; rows go as their tokens expire.
CREATE TABLE legacy_refresh_tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO legacy_refresh_tokens (jti, session_id, generation, expires_at)
SELECT t.jti, t.family_id,
       ROW_NUMBER() OVER (PARTITION BY t.family_id ORDER BY t.issued_at, t.rowid),
       t.expires_at
FROM refresh_tokens t;

DROP TABLE refresh_tokens;
DROP TABLE refresh_families;
