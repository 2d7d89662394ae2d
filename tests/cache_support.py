"""Helpers for tests that drive a Cache adapter directly."""

from __future__ import annotations

from tenantauth.domain.models import KeyRecord, Revocations
from tenantauth.domain.ports import Cache


def fill_now(
    cache: Cache, record: KeyRecord, ttl: float, revocations: Revocations | None = None
) -> bool:
    """Fill ``record`` under the cache's current ticket, as a verifier that just missed would
    (the ticket is taken before the "storage read", which here is the record in hand)."""
    ticket = cache.get_state(record.tenant_id, "", "").ticket or cache.claim(record.tenant_id)
    return cache.fill(record, ttl, revocations, ticket=ticket)
