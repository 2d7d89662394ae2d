-- Revocation points per subject ("log out everywhere") and the jti denylist.
-- Times are Unix seconds (bigint) because they are compared with JWT NumericDates.
CREATE TABLE subject_revocations (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    subject    text NOT NULL,
    -- Tokens carry the version current when they were issued (claim `uv`, absent = 0);
    -- a token whose `uv` is below this version is revoked.
    version    integer NOT NULL CHECK (version > 0),
    revoked_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, subject)
);
CREATE INDEX subject_revocations_recent ON subject_revocations (tenant_id, revoked_at);

CREATE TABLE revoked_jtis (
    tenant_id  text NOT NULL REFERENCES tenants (id),
    jti        text NOT NULL,
    -- The token's `exp`: after it (plus leeway) the row can be purged.
    expires_at bigint NOT NULL,
    revoked_at bigint NOT NULL,
    PRIMARY KEY (tenant_id, jti)
);
CREATE INDEX revoked_jtis_live ON revoked_jtis (tenant_id, expires_at);
