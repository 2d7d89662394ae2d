"""The Cache contract (domain/ports.py) against real Redis, plus NullCache's subset."""

from __future__ import annotations

import base64

import pytest
import redis

from tenantauth.cache import cache_key
from tenantauth.cache.null import NullCache
from tenantauth.cache.redis import RedisCache
from tenantauth.domain.models import KeyRecord, TenantStatus
from tenantauth.errors import CacheUnavailableError
from tests.cache_support import fill_now
from tests.contract.factories import KEYRING
from tests.support import RUN_LOCK


def record(tenant_id: str = "acme", generation: int = 1) -> KeyRecord:
    """Return an active record with a sealed secret."""
    return KeyRecord(tenant_id, generation, TenantStatus.ACTIVE, KEYRING.seal(tenant_id, b"s" * 32))


def test_miss_then_fill_then_hit(redis_cache: RedisCache) -> None:
    """get() misses until fill() stores the record; fill() says it stored it."""
    assert redis_cache.get("acme") is None
    assert fill_now(redis_cache, record(), 60) is True
    assert redis_cache.get("acme") is not None


def test_round_trip_preserves_the_sealed_secret(redis_cache: RedisCache) -> None:
    """The cached sealed secret still opens to the same plaintext."""
    original = record()
    fill_now(redis_cache, original, 60)
    cached = redis_cache.get("acme")
    assert cached == original
    assert KEYRING.open("acme", cached.sealed_secret) == b"s" * 32  # type: ignore[union-attr, arg-type]


def test_fence_returns_next_generation_and_drops_the_entry(redis_cache: RedisCache) -> None:
    """fence(t, g) returns max(fence, g) + 1 and removes the cached entry."""
    fill_now(redis_cache, record(generation=3), 60)
    assert redis_cache.fence("acme", 3) == 4
    assert redis_cache.get("acme") is None
    assert redis_cache.fence("acme", 1) == 5  # the fence, not the caller's number, wins
    assert redis_cache.fence("acme", 9) == 10


def test_fill_below_the_fence_is_refused(redis_cache: RedisCache) -> None:
    """After fence() returned n, no entry with a generation below n can be stored."""
    n = redis_cache.fence("acme", 1)
    assert not fill_now(redis_cache, record(generation=n - 1), 60)
    assert redis_cache.get("acme") is None
    assert fill_now(redis_cache, record(generation=n), 60)
    assert redis_cache.get("acme").generation == n  # type: ignore[union-attr]


def test_fill_older_than_the_cached_entry_is_refused(redis_cache: RedisCache) -> None:
    """A slow filler cannot overwrite a newer entry; an equal one may refresh it."""
    assert fill_now(redis_cache, record(generation=5), 60)
    assert not fill_now(redis_cache, record(generation=4), 60)
    assert fill_now(redis_cache, record(generation=5), 60)
    assert redis_cache.get("acme").generation == 5  # type: ignore[union-attr]


def test_negative_entries_round_trip_and_creation_fences_them(redis_cache: RedisCache) -> None:
    """An unknown id is cached as ABSENT until a fence (tenant creation) removes it."""
    assert fill_now(redis_cache, KeyRecord.absent("ghost"), 5)
    assert redis_cache.get("ghost") == KeyRecord.absent("ghost")
    redis_cache.fence("ghost", 0)
    assert redis_cache.get("ghost") is None
    assert not fill_now(redis_cache, KeyRecord.absent("ghost"), 5)


def test_entries_expire(redis_cache: RedisCache, redis_url: str) -> None:
    """fill() sets a TTL on the entry (fences have none: they must outlive entries)."""
    fill_now(redis_cache, record(), 30)
    redis_cache.fence("other", 0)
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < client.pttl(cache_key("acme", "entry")) <= 30_000
        assert client.pttl(cache_key("other", "fence")) == -1
    finally:
        client.close()


def test_keys_have_one_prefix_and_no_plaintext(redis_cache: RedisCache, redis_url: str) -> None:
    """Every key starts with tenantauth:{tenant}: and no value holds the plaintext secret."""
    fill_now(redis_cache, record("acme"), 60)
    redis_cache.fence("beta", 0)
    client = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in client.keys("*") if k.decode() != RUN_LOCK)
        values = [client.get(k) or b"" for k in keys]
    finally:
        client.close()
    assert keys == ["tenantauth:{acme}:entry", "tenantauth:{acme}:inc", "tenantauth:{beta}:fence"]
    plain = b"s" * 32
    for value in values:
        assert plain not in value
        assert base64.b64encode(plain) not in value
        assert base64.urlsafe_b64encode(plain).rstrip(b"=") not in value


def test_tenants_are_isolated(redis_cache: RedisCache) -> None:
    """Fencing tenant A leaves tenant B's entry and generation alone."""
    fill_now(redis_cache, record("tenant-b", 2), 60)
    redis_cache.fence("tenant-a", 7)
    assert redis_cache.get("tenant-b").generation == 2  # type: ignore[union-attr]
    assert fill_now(redis_cache, record("tenant-b", 2), 60)


def test_malformed_entry_is_a_miss(redis_cache: RedisCache, redis_url: str) -> None:
    """A corrupted value is treated as a miss (storage answers), never trusted."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(cache_key("acme", "entry"), b"garbage")
    finally:
        client.close()
    assert redis_cache.get("acme") is None


def test_unreachable_redis_raises_cache_unavailable() -> None:
    """Every operation on a dead Redis raises CacheUnavailableError quickly."""
    cache = RedisCache("redis://127.0.0.1:1/0", timeout=0.2, breaker_seconds=0.0)
    try:
        for call in (
            lambda: cache.get("acme"),
            lambda: fill_now(cache, record(), 5),
            lambda: cache.fence("acme", 1),
            cache.ping,
        ):
            with pytest.raises(CacheUnavailableError):
                call()
    finally:
        cache.close()


def test_null_cache_never_holds_and_still_orders_generations() -> None:
    """NullCache misses always and hands out stored + 1 from fence()."""
    cache = NullCache()
    assert not fill_now(cache, record(), 60)
    assert cache.get("acme") is None
    assert cache.fence("acme", 41) == 42
