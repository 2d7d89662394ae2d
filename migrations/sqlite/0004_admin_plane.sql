-- Same schema as migrations/postgres/0004_admin_plane.sql in SQLite's types.
CREATE TABLE admin_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    tenant_id    TEXT REFERENCES tenants (id),
    key_hash     BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
) STRICT;

CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY CHECK (seq > 0),
    occurred_at TEXT NOT NULL,
    actor       TEXT NOT NULL,
    tenant_id   TEXT,
    action      TEXT NOT NULL,
    target      TEXT,
    request_id  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    entry_hash  BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);
