-- The login and registration limits (reference §6), shared by every process
-- on this database. One row per counter: `key` names what is counted (the
-- kind, the client, for logins also the lower-cased username); the count (`hits`)
-- holds for `window` seconds from `window_start`, then starts again.
CREATE TABLE limit_counters (
    key TEXT PRIMARY KEY NOT NULL,
    window_start BIGINT NOT NULL,
    hits INTEGER NOT NULL
);
CREATE INDEX limit_counters_window ON limit_counters (window_start);
