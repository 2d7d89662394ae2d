-- Issue 15: every tenant is its own issuer, I = <TENANTAUTH_ISSUER>/v1/tenants/<id>, in its
-- tokens (iss) and its RFC 8414 metadata alike. Tokens minted before this release carry the
-- service's base URL as iss; they stay valid if issued before legacy_until: the moment this
-- migration ran plus a day (old replicas of a rolling upgrade may still mint that form for a
-- while), so the legacy form dies by itself one maximum token lifetime after that. A database
-- without tenants has no legacy tokens, and gets no row: the legacy form is never accepted.
CREATE TABLE legacy_issuer (
    id integer PRIMARY KEY CHECK (id = 1),
    legacy_until timestamptz NOT NULL
);
INSERT INTO legacy_issuer (id, legacy_until)
SELECT 1, now() + interval '1 day' WHERE EXISTS (SELECT 1 FROM tenants);
