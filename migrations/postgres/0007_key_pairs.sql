-- Issue 15: a tenant's signing key has an algorithm and a name (docs/design.md, "Key
-- lifecycle"). secret_blob now holds the HS256 secret or a key pair's private key (PKCS#8 DER),
-- sealed to tenant id, key name and alg. Every existing tenant keeps its secret as key 'k0'
-- (sealed to the tenant id, as before), whose tokens name it by the bare tenant id.
ALTER TABLE tenants
    ADD COLUMN alg text NOT NULL DEFAULT 'HS256'
        CHECK (alg IN ('HS256', 'EdDSA', 'ES256', 'RS256')),
    ADD COLUMN key_name text NOT NULL DEFAULT 'k0'
        CHECK (key_name ~ '^(k0|[a-z2-7]{8})$');
