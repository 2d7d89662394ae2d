-- Same schema as migrations/postgres/0002_revocations.sql in SQLite's types.
CREATE TABLE subject_revocations (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    subject    TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, subject)
) STRICT;
CREATE INDEX subject_revocations_recent ON subject_revocations (tenant_id, revoked_at);

CREATE TABLE revoked_jtis (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, jti)
) STRICT;
CREATE INDEX revoked_jtis_live ON revoked_jtis (tenant_id, expires_at);
