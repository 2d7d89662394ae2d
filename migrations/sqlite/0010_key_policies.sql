-- Same as migrations/postgres/0010_key_policies.sql in SQLite's types.
CREATE TABLE key_policies (
    tenant_id     TEXT PRIMARY KEY REFERENCES tenants (id),
    every         INTEGER NOT NULL CHECK (every > 0),
    publish_ahead INTEGER NOT NULL CHECK (publish_ahead >= 0 AND publish_ahead < every),
    grace         INTEGER CHECK (grace >= 0),
    updated_at    TEXT NOT NULL
) STRICT;
