-- The second factor, passkeys and re-authentication (reference §8); the same
-- tables as migrations/sqlite/2026-12-02-000006_second_factor.
-- Times are Unix seconds.

-- When the session's user last proved who they are (login or
-- re-authentication) and how: `amr` is a space-separated list of
-- `pwd`, `otp`, `rec`, `hwk`. Sessions from before this migration were
-- opened with a password at their creation.
ALTER TABLE sessions ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0,
                     ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
UPDATE sessions SET auth_time = created_at;

-- A user's TOTP secret (base32). `enabled_at` is NULL while the enrolment
-- waits for its first valid code; `last_step` is the last accepted time
-- step, so each code is accepted once.
CREATE TABLE totp_secrets (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    enabled_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

-- Recovery codes, as SHA-256 hashes (the codes are random, 80 bits).
CREATE TABLE recovery_codes (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- The second step of a login: a correct password made one; a valid code
-- completes it once. Only the token's SHA-256 is stored.
CREATE TABLE mfa_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);

-- Passkeys (WebAuthn credentials). `credential_id` is base64url;
-- `user_handle` is the user's WebAuthn id (a UUID, the same for all of a
-- user's passkeys); `passkey` is the credential as webauthn-rs keeps it.
CREATE TABLE passkeys (
    id SERIAL PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    user_handle TEXT NOT NULL,
    name TEXT NOT NULL,
    passkey TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);

-- A passkey ceremony between its start and its finish: used once, for 300 s.
-- `user_id` is NULL for a login (the passkey names the user).
CREATE TABLE webauthn_ceremonies (
    id TEXT PRIMARY KEY,
    user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
