-- Issue 15: scheduled rollover. A tenant with a policy gets a next key published
-- `publish_ahead` seconds before its signing key turns `every` seconds old, and rolled over to
-- it then (by `tenantauth keys roll-due`, a CronJob); the previous key verifies for `grace`
-- seconds (NULL: the tenant's max token TTL plus the clock leeway).
CREATE TABLE key_policies (
    tenant_id     text PRIMARY KEY REFERENCES tenants (id),
    every         integer NOT NULL CHECK (every > 0),
    publish_ahead integer NOT NULL CHECK (publish_ahead >= 0 AND publish_ahead < every),
    grace         integer CHECK (grace >= 0),
    updated_at    timestamptz NOT NULL
);
