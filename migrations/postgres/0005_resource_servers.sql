-- Resource servers (issue 12): credentials that may introspect tokens (RFC 7662) of the
-- tenants they are allowed for, and do nothing else. Global: managed by global admins only.
CREATE TABLE resource_servers (
    -- The public id "tar_<base64url>", the user name of HTTP Basic at the introspection
    -- endpoints; never a client id (those start "tac_").
    id                text PRIMARY KEY,
    name              text NOT NULL,
    -- NULL: no audience required; otherwise a token must name it in "aud" to be active.
    audience          text,
    secret_hash       bytea NOT NULL,       -- HMAC-SHA256 under a key derived from the master key
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    secret_rotated_at timestamptz NOT NULL
);

-- The tenants each server may introspect for. Keyed by tenant first (STYLE: tenant-scoped
-- tables lead with tenant_id), so deleting a tenant removes it from every server at once.
CREATE TABLE resource_server_tenants (
    tenant_id          text NOT NULL REFERENCES tenants (id),
    resource_server_id text NOT NULL REFERENCES resource_servers (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, resource_server_id)
);
CREATE INDEX resource_server_tenants_server ON resource_server_tenants (resource_server_id, tenant_id);
