DROP TABLE webauthn_ceremonies;
DROP TABLE passkeys;
DROP TABLE mfa_challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_secrets;
ALTER TABLE sessions DROP COLUMN amr, DROP COLUMN auth_time;
