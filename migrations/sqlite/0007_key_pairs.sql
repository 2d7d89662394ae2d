-- Same as migrations/postgres/0007_key_pairs.sql in SQLite's types.
ALTER TABLE tenants ADD COLUMN alg TEXT NOT NULL DEFAULT 'HS256'
    CHECK (alg IN ('HS256', 'EdDSA', 'ES256', 'RS256'));
ALTER TABLE tenants ADD COLUMN key_name TEXT NOT NULL DEFAULT 'k0'
    CHECK (key_name = 'k0' OR (length(key_name) = 8 AND key_name NOT GLOB '*[^a-z2-7]*'));
