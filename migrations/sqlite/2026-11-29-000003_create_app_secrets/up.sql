-- Development only: the generated JWT key, kept so a restart logs nobody out.
CREATE TABLE app_secrets (
    name TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
