-- Same schema as migrations/postgres/0005_resource_servers.sql in SQLite's types. SQLite does
-- not enforce foreign keys here (no PRAGMA foreign_keys), so the adapter deletes a server's
-- tenant rows itself.
CREATE TABLE resource_servers (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    audience          TEXT,
    secret_hash       BLOB NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    secret_rotated_at TEXT NOT NULL
) STRICT;

CREATE TABLE resource_server_tenants (
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    resource_server_id TEXT NOT NULL REFERENCES resource_servers (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, resource_server_id)
) STRICT;
CREATE INDEX resource_server_tenants_server ON resource_server_tenants (resource_server_id, tenant_id);
