-- Same as migrations/postgres/0008_tenant_issuers.sql in SQLite's types (ISO 8601 text, as
-- every timestamp here).
CREATE TABLE legacy_issuer (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    legacy_until TEXT NOT NULL
) STRICT;
INSERT INTO legacy_issuer (id, legacy_until)
SELECT 1, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '+1 day') WHERE EXISTS (SELECT 1 FROM tenants);
