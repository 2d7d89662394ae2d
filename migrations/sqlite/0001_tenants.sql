-- Same schema as migrations/postgres/0001_tenants.sql in SQLite's types.
CREATE TABLE tenants (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    key_version      INTEGER NOT NULL CHECK (key_version > 0),
    generation       INTEGER NOT NULL CHECK (generation > 0),
    access_token_ttl INTEGER NOT NULL CHECK (access_token_ttl > 0),
    max_token_ttl    INTEGER NOT NULL CHECK (max_token_ttl >= access_token_ttl),
    secret_key_id    TEXT,
    secret_blob      BLOB,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    rotated_at       TEXT NOT NULL,
    CONSTRAINT tenants_secret_iff_live CHECK ((status = 'deleted') = (secret_blob IS NULL)),
    CONSTRAINT tenants_key_id_with_secret CHECK ((secret_blob IS NULL) = (secret_key_id IS NULL))
) STRICT;
