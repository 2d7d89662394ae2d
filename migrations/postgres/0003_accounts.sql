-- Users, OAuth clients and refresh tokens of each tenant (issue 3).
CREATE TABLE users (
    tenant_id     text NOT NULL REFERENCES tenants (id),
    username      text NOT NULL,
    password_hash text NOT NULL,              -- argon2id, PHC string
    status        text NOT NULL CHECK (status IN ('active', 'disabled')),
    claims        text NOT NULL DEFAULT '{}', -- JSON object added to the user's tokens
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, username)
);

CREATE TABLE clients (
    tenant_id         text NOT NULL REFERENCES tenants (id),
    client_id         text NOT NULL,
    name              text NOT NULL,
    secret_hash       bytea NOT NULL,         -- HMAC-SHA256 under a key derived from the master key
    scopes            text NOT NULL,          -- space-separated (RFC 6749 §3.3)
    grant_types       text NOT NULL,          -- space-separated
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    secret_rotated_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, client_id)
);

CREATE TABLE refresh_tokens (
    tenant_id       text NOT NULL REFERENCES tenants (id),
    token_hash      bytea NOT NULL,           -- keyed hash; the token itself is never stored
    family_id       text NOT NULL,            -- every token obtained by rotating one grant
    client_id       text NOT NULL,
    username        text NOT NULL,
    scope           text NOT NULL,
    key_version     integer NOT NULL,         -- tenant rotation kills the token
    subject_version integer NOT NULL,         -- a later user revocation kills the token
    issued_at       bigint NOT NULL,
    expires_at      bigint NOT NULL,
    used_at         bigint,                   -- exchanged (rotated) at
    replaced_by     bytea,                    -- hash of the token it was exchanged for
    revoked_at      bigint,
    PRIMARY KEY (tenant_id, token_hash)
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (tenant_id, username);
