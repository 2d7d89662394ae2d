-- Tenants and their sealed signing secrets. Rows are never removed: a deleted tenant is a
-- tombstone (secret erased) so its generation keeps rising if the id is created again.
CREATE TABLE tenants (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name             text NOT NULL,
    status           text NOT NULL CHECK (status IN ('active', 'suspended', 'deleted')),
    key_version      integer NOT NULL CHECK (key_version > 0),
    generation       bigint NOT NULL CHECK (generation > 0),
    access_token_ttl integer NOT NULL CHECK (access_token_ttl > 0),
    max_token_ttl    integer NOT NULL CHECK (max_token_ttl >= access_token_ttl),
    -- id of the master key that sealed secret_blob (nonce || AES-GCM ciphertext || tag), so the
    -- master key can be rotated by re-wrapping rows one by one.
    secret_key_id    text,
    secret_blob      bytea,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    rotated_at       timestamptz NOT NULL,
    CONSTRAINT tenants_secret_iff_live CHECK ((status = 'deleted') = (secret_blob IS NULL)),
    CONSTRAINT tenants_key_id_with_secret CHECK ((secret_blob IS NULL) = (secret_key_id IS NULL))
);
