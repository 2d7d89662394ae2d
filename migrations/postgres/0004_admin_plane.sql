-- The admin plane (issue 5): admin API keys and the hash-chained audit log.
CREATE TABLE admin_keys (
    -- The public part of the key "ta_adm_<id>_<secret>": shown in listings, never secret.
    id           text PRIMARY KEY,
    name         text NOT NULL,
    -- NULL: a global admin; otherwise the admin of this one tenant only.
    tenant_id    text REFERENCES tenants (id),
    key_hash     bytea NOT NULL,              -- HMAC-SHA256 under a key derived from the master key
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);

-- Append-only; each entry_hash is an HMAC over the entry and the previous entry_hash, so an
-- edited, deleted or reordered row breaks the chain (`tenantauth audit verify`).
-- No foreign key on tenant_id: refused attempts name tenants that may not exist, and the
-- log must outlive whatever it describes.
CREATE TABLE audit_log (
    seq         bigint PRIMARY KEY CHECK (seq > 0), -- 1, 2, 3, ...: assigned under a lock
    occurred_at timestamptz NOT NULL,
    actor       text NOT NULL,                      -- admin key id, 'bootstrap' or 'cli'
    tenant_id   text,
    action      text NOT NULL,                      -- e.g. 'tenant.rotate'
    target      text,                               -- e.g. a username, client id or key id
    request_id  text NOT NULL,
    outcome     text NOT NULL,                      -- 'success' or the refusal's HTTP status
    prev_hash   bytea NOT NULL,
    entry_hash  bytea NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);
