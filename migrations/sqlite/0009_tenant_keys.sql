-- Same as migrations/postgres/0009_tenant_keys.sql in SQLite's types.
CREATE TABLE tenant_keys (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    key_name      TEXT NOT NULL
        CHECK (key_name = 'k0' OR (length(key_name) = 8 AND key_name NOT GLOB '*[^a-z2-7]*')),
    alg           TEXT NOT NULL CHECK (alg IN ('HS256', 'EdDSA', 'ES256', 'RS256')),
    secret_key_id TEXT NOT NULL,
    secret_blob   BLOB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('next', 'retiring')),
    at            INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_name)
) STRICT;
CREATE UNIQUE INDEX tenant_keys_one_next ON tenant_keys (tenant_id) WHERE state = 'next';
