"""Cache incarnations and the post-commit seal (docs/design.md, "Cache incarnations"), on real
PostgreSQL and Redis.

A Redis that restarts, is flushed, is restored from an older snapshot or is replaced by a
failover has lost (or never had) the fences written since. These tests recreate each such
state in our own Redis DB by writing or deleting the keys such an event leaves behind — the
real restart and snapshot restore are in tests/faults (scenario 6).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from tenantauth.cache import cache_key
from tenantauth.cache.redis import RedisCache, encode_entry
from tenantauth.domain import revocations, tenants
from tenantauth.domain.models import CacheRead, KeyRecord, TenantStatus
from tenantauth.domain.services import Services
from tenantauth.errors import InvalidTokenError
from tests.cache_support import fill_now
from tests.contract.factories import KEYRING
from tests.contract.test_fence_race import (
    WAIT,
    PausingFenceCache,
    PausingRevocationsStorage,
    PausingStorage,
    in_thread,
    mint,
    verifier_on,
    with_cache,
)

FOREIGN = "0123456789abcdef0123456789abcdef01234567.snapshot"


SEALED = KEYRING.seal("acme", b"s" * 32)


def record(generation: int = 1) -> KeyRecord:
    """An active record of tenant acme."""
    return KeyRecord("acme", generation, TenantStatus.ACTIVE, SEALED)


def raw_client(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url, socket_timeout=5)


def lose_tenant_keys(redis_url: str, tenant_id: str = "acme") -> None:
    """What a restart without persistence (or FLUSHDB) leaves of one tenant: nothing."""
    client = raw_client(redis_url)
    try:
        client.delete(*(cache_key(tenant_id, k) for k in ("entry", "fence", "inc")))
    finally:
        client.close()


def test_an_entry_from_another_server_incarnation_is_ignored(
    redis_cache: RedisCache, redis_url: str
) -> None:
    """A snapshot's entry and incarnation (another run_id) are not trusted: a miss, and a fresh
    incarnation of this server is claimed for the refill."""
    client = raw_client(redis_url)
    try:
        client.set(cache_key("acme", "inc"), FOREIGN)
        client.set(cache_key("acme", "entry"), encode_entry(record(1), FOREIGN))
    finally:
        client.close()
    read = redis_cache.get_state("acme", "", "")
    assert read == CacheRead(None, "")  # the foreign incarnation is no ticket
    fresh = redis_cache.claim("acme")
    assert fresh and fresh != FOREIGN
    assert fill_now(redis_cache, record(2), 60)
    assert redis_cache.get("acme") == record(2)


def test_a_fill_under_a_ticket_older_than_a_flush_is_refused(
    redis_cache: RedisCache, redis_url: str
) -> None:
    """A filler that read storage before the cache lost its keys cannot write afterwards,
    even into an empty cache with no fence: its ticket names the lost incarnation."""
    stale_ticket = redis_cache.claim("acme")
    assert stale_ticket
    lose_tenant_keys(redis_url)
    assert not redis_cache.fill(record(1), 60, ticket=stale_ticket)
    assert redis_cache.get("acme") is None


def test_a_ticket_of_another_server_is_refused_even_if_the_key_holds_it(
    redis_cache: RedisCache, redis_url: str
) -> None:
    """A Redis restored with the very incarnation key a stale filler read under: the fill runs
    on a server whose run_id is not the ticket's, so it is refused before it is sent."""
    client = raw_client(redis_url)
    try:
        client.set(cache_key("acme", "inc"), FOREIGN)
    finally:
        client.close()
    assert not redis_cache.fill(record(1), 60, ticket=FOREIGN)
    assert redis_cache.get("acme") is None


def test_concurrent_claims_agree_on_one_incarnation(
    redis_cache: RedisCache, redis_url: str
) -> None:
    """Two processes missing after a loss claim once: the second adopts the first's claim."""
    other = RedisCache(redis_url, timeout=2.0)
    try:
        first = redis_cache.claim("acme")
        assert first and other.claim("acme") == first
        assert redis_cache.get_state("acme", "", "").ticket == first
    finally:
        other.close()


def test_seal_drops_older_entries_and_never_lowers_the_fence(redis_cache: RedisCache) -> None:
    """seal(g): entries below g go, fills below g are refused, g itself is welcome."""
    assert fill_now(redis_cache, record(5), 60)
    redis_cache.seal("acme", 6)
    assert redis_cache.get("acme") is None
    assert not fill_now(redis_cache, record(5), 60)
    redis_cache.seal("acme", 3)  # an older seal arriving late changes nothing
    assert not fill_now(redis_cache, record(5), 60)
    assert fill_now(redis_cache, record(6), 60)
    redis_cache.seal("acme", 6)  # a repeat keeps the current entry
    assert redis_cache.get("acme") == record(6)


def test_cache_lost_between_fence_and_commit_cannot_keep_the_old_secret(
    pg_services: Services, redis_url: str
) -> None:
    """The race the seal closes. The rotation fences; the cache then loses the tenant's keys
    (restart); a verifier misses, claims a new incarnation and reads the *old* row (not yet
    committed); the rotation commits and returns; the verifier fills. Without the seal that
    fill lands (no fence survived) and the old token verifies after the rotate returned."""
    svc = pg_services
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    pausing = PausingFenceCache(svc.cache)
    rotating = with_cache(svc, pausing)
    rotation, rotated = in_thread(lambda: tenants.rotate_tenant(rotating, "acme"))
    assert pausing.fenced.wait(WAIT)
    lose_tenant_keys(redis_url)  # the fence is gone with the restart

    slow = PausingStorage(svc.storage)
    verification, _ = in_thread(lambda: verifier_on(svc, storage=slow).verify(old))
    assert slow.paused.wait(WAIT)  # it holds the old row, under the new incarnation

    pausing.resume.set()
    rotation.join(WAIT)
    assert not isinstance(rotated[0], Exception)  # the rotate call returned
    slow.resume.set()
    verification.join(WAIT)

    for verifier in (verifier_on(svc), svc.verifier):
        with pytest.raises(InvalidTokenError):
            verifier.verify(old)
    svc.verifier.verify(mint(svc))


class PausingMarkCache:
    """Our cache, but a revocation stops right after its first (pre-commit) mark."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.marked = threading.Event()
        self.resume = threading.Event()

    def revoke_subject(self, *args: Any) -> None:
        self.inner.revoke_subject(*args)
        if not self.marked.is_set():
            self.marked.set()
            assert self.resume.wait(WAIT)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_subject_revocation_survives_a_cache_lost_before_its_commit(
    pg_services: Services, redis_url: str
) -> None:
    """The same window for "log out everywhere": marked, then the cache loses the tenant; a
    verifier claims a new incarnation and reads the revocations (old version, uncommitted);
    the revocation commits and returns; the verifier fills. The post-commit mark wins."""
    svc = pg_services
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    pausing = PausingMarkCache(svc.cache)
    revoking = with_cache(svc, pausing)
    revocation, revoked = in_thread(lambda: revocations.revoke_subject(revoking, "acme", "user-1"))
    assert pausing.marked.wait(WAIT)
    lose_tenant_keys(redis_url)
    client = raw_client(redis_url)
    try:
        client.delete(*client.keys(cache_key("acme", "sub:*")))
    finally:
        client.close()

    slow = PausingRevocationsStorage(svc.storage)
    verification, _ = in_thread(lambda: verifier_on(svc, storage=slow).verify(old))
    assert slow.paused.wait(WAIT)  # it holds "user-1 never revoked"

    pausing.resume.set()
    revocation.join(WAIT)
    assert not isinstance(revoked[0], Exception)  # the revoke call returned
    slow.resume.set()
    verification.join(WAIT)

    for verifier in (verifier_on(svc), svc.verifier):
        with pytest.raises(InvalidTokenError):
            verifier.verify(old)
