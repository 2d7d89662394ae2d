-- Issue 15: a tenant's keys other than the one it signs with (which stays in tenants): at
-- most one 'next' key (published in the JWKS, not signing before `at`, epoch seconds) and
-- 'retiring' keys (a rollover's previous keys: they sign no more and verify until `at`).
-- Sealed like the signing key, to tenant id, key name and alg. A rotation deletes them all.
CREATE TABLE tenant_keys (
    tenant_id     text NOT NULL REFERENCES tenants (id),
    key_name      text NOT NULL CHECK (key_name ~ '^(k0|[a-z2-7]{8})$'),
    alg           text NOT NULL CHECK (alg IN ('HS256', 'EdDSA', 'ES256', 'RS256')),
    secret_key_id text NOT NULL,
    secret_blob   bytea NOT NULL,
    state         text NOT NULL CHECK (state IN ('next', 'retiring')),
    at            bigint NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key_name)
);
CREATE UNIQUE INDEX tenant_keys_one_next ON tenant_keys (tenant_id) WHERE state = 'next';
