-- Same schema as migrations/postgres/0003_accounts.sql in SQLite's types.
CREATE TABLE users (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,              -- argon2id, PHC string
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    claims        TEXT NOT NULL DEFAULT '{}', -- JSON object added to the user's tokens
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, username)
) STRICT;

CREATE TABLE clients (
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    client_id         TEXT NOT NULL,
    name              TEXT NOT NULL,
    secret_hash       BLOB  NOT NULL,         -- HMAC-SHA256 under a key derived from the master key
    scopes            TEXT NOT NULL,          -- space-separated (RFC 6749 §3.3)
    grant_types       TEXT NOT NULL,          -- space-separated
    created_at        TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    secret_rotated_at TEXT    NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
) STRICT;

CREATE TABLE refresh_tokens (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    token_hash      BLOB  NOT NULL,           -- keyed hash; the token itself is never stored
    family_id       TEXT NOT NULL,            -- every token obtained by rotating one grant
    client_id       TEXT NOT NULL,
    username        TEXT NOT NULL,
    scope           TEXT NOT NULL,
    key_version     INTEGER NOT NULL,         -- tenant rotation kills the token
    subject_version INTEGER NOT NULL,         -- a later user revocation kills the token
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,                   -- exchanged (rotated) at
    replaced_by     BLOB ,                    -- hash of the token it was exchanged for
    revoked_at      INTEGER,
    PRIMARY KEY (tenant_id, token_hash)
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, username);
