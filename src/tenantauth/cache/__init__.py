"""Cache adapters: ``RedisCache`` (production) and ``NullCache`` (embedded, no Redis)."""

from __future__ import annotations


def cache_key(tenant_id: str, kind: str) -> str:
    """Return the one key shape of tenantauth: ``tenantauth:{<tenant>}:<kind>``.

    The braces are a Redis Cluster hash tag, so a tenant's entry and fence share a slot and
    one Lua script may touch both.
    """
    return f"tenantauth:{{{tenant_id}}}:{kind}"
