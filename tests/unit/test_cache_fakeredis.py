"""RedisCache over fakeredis (its Lua fill and fence scripts), and KeyResolver's use of it."""

from __future__ import annotations

import base64
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import fakeredis
import pytest

from tenantauth.cache import cache_key
from tenantauth.cache.redis import RedisCache, decode_entry, encode_entry
from tenantauth.crypto.envelope import MasterKeyring
from tenantauth.domain.models import (
    KeyRecord,
    SealedSecret,
    Tenant,
    TenantStatus,
    VerificationState,
)
from tenantauth.domain.policy import CachePolicy
from tenantauth.domain.ports import Storage, Tx
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import TenantChanges, create_tenant, rotate_tenant, update_tenant
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.errors import CacheUnavailableError
from tests.cache_support import fill_now
from tests.support import MASTER_KEY
from tests.unit.helpers import ACME_SECRET, OTHER_SECRET, secret_text

SEALED = SealedSecret("0123456789ab", b"\x00\x01sealed-blob\xff")


def record(generation: int, status: TenantStatus = TenantStatus.ACTIVE) -> KeyRecord:
    """Return a key record of tenant acme."""
    sealed = None if status in (TenantStatus.DELETED, TenantStatus.ABSENT) else SEALED
    return KeyRecord("acme", generation, status, sealed)


# --- RedisCache ---------------------------------------------------------------------------


def test_fill_then_get_round_trip(cache: RedisCache) -> None:
    """A filled record is returned by get exactly as it was filled."""
    assert cache.get("acme") is None
    assert fill_now(cache, record(3), 60) is True
    assert cache.get("acme") == record(3)


def test_fill_sets_ttl(cache: RedisCache, fake_redis: fakeredis.FakeRedis) -> None:
    """fill stores the entry with the given TTL in milliseconds."""
    fill_now(cache, record(1), 2.5)
    assert 0 < fake_redis.pttl(cache_key("acme", "entry")) <= 2_500


def test_cache_key_shape(cache: RedisCache, fake_redis: fakeredis.FakeRedis) -> None:
    """Entries, incarnations and fences live under tenantauth:{<tenant>}: (one hash slot)."""
    assert cache_key("acme", "entry") == "tenantauth:{acme}:entry"
    fill_now(cache, record(1), 60)
    cache.fence("other", 0)
    assert sorted(fake_redis.keys("*")) == [
        b"tenantauth:{acme}:entry",
        b"tenantauth:{acme}:inc",
        b"tenantauth:{other}:fence",
    ]


def test_entry_never_holds_plaintext_secret(
    svc: Services, acme: Tenant, fake_redis: fakeredis.FakeRedis
) -> None:
    """The cached entry holds the sealed blob only, never the tenant's secret."""
    svc.keys.verification_key("acme")  # a miss: reads storage and fills the cache
    raw = fake_redis.get(cache_key("acme", "entry"))
    assert raw is not None
    for spelling in (ACME_SECRET, ACME_SECRET.hex(), base64.b64encode(ACME_SECRET).decode()):
        assert (spelling if isinstance(spelling, bytes) else spelling.encode()) not in raw


def test_fence_returns_next_generation_and_drops_entry(
    cache: RedisCache, fake_redis: fakeredis.FakeRedis
) -> None:
    """fence returns max(fence, stored) + 1, stores it and deletes the entry."""
    fill_now(cache, record(5), 60)
    assert cache.fence("acme", 5) == 6
    assert cache.get("acme") is None
    assert fake_redis.get(cache_key("acme", "fence")) == b"6"
    assert cache.fence("acme", 2) == 7  # the stored fence is higher
    assert cache.fence("acme", 10) == 11  # the database is ahead (e.g. Redis was wiped)


def test_fill_below_fence_refused(cache: RedisCache) -> None:
    """After fence returned n, entries with a generation below n are refused."""
    new = cache.fence("acme", 4)
    assert fill_now(cache, record(new - 1), 60) is False
    assert cache.get("acme") is None
    assert fill_now(cache, record(new), 60) is True
    assert cache.get("acme") == record(new)


def test_fill_older_than_cached_refused(cache: RedisCache) -> None:
    """A fill older than the cached entry is refused; an equal or newer one replaces it."""
    assert fill_now(cache, record(7), 60)
    assert fill_now(cache, record(6, TenantStatus.SUSPENDED), 60) is False
    assert cache.get("acme") == record(7)
    assert fill_now(cache, record(7, TenantStatus.SUSPENDED), 60) is True
    assert fill_now(cache, record(8, TenantStatus.DELETED), 60) is True
    assert cache.get("acme") == record(8, TenantStatus.DELETED)


def test_negative_entry(cache: RedisCache) -> None:
    """An ABSENT record is cached as a negative entry, and a fence bars it afterwards."""
    absent = KeyRecord.absent("acme")
    assert fill_now(cache, absent, 10) is True
    assert cache.get("acme") == absent
    generation = cache.fence("acme", 0)
    assert cache.get("acme") is None
    assert fill_now(cache, absent, 10) is False  # a stale "does not exist" cannot come back
    assert generation == 1


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage",
        b"1|active|id",
        b"1|active|id|blob|extra",
        b"x|active|id|AAAA",
        b"1|exploded|id|AAAA",
        b"1|active|id|not base64!",
        b"\xff\xfe|active|id|AAAA",
        b"",
    ],
    ids=[
        "no-fields",
        "3-fields",
        "5-fields",
        "bad-gen",
        "bad-status",
        "bad-blob",
        "bad-utf8",
        "empty",
    ],
)
def test_malformed_entry_is_a_miss(
    cache: RedisCache, fake_redis: fakeredis.FakeRedis, raw: bytes
) -> None:
    """A malformed cache entry reads as a miss (storage answers) instead of an error."""
    fake_redis.set(cache_key("acme", "entry"), raw)
    assert cache.get("acme") is None


def test_fill_replaces_malformed_entry(cache: RedisCache, fake_redis: fakeredis.FakeRedis) -> None:
    """A fill overwrites a malformed entry (its generation cannot be read)."""
    fake_redis.set(cache_key("acme", "entry"), b"garbage")
    assert fill_now(cache, record(1), 60) is True
    assert cache.get("acme") == record(1)


@pytest.mark.parametrize(
    "rec",
    [record(3), record(4, TenantStatus.SUSPENDED), record(5, TenantStatus.DELETED)],
    ids=["active", "suspended", "deleted"],
)
def test_entry_encoding_round_trip(rec: KeyRecord) -> None:
    """encode_entry and decode_entry are inverse for every status, within one incarnation;
    an entry stamped by another incarnation reads as a miss."""
    raw = encode_entry(rec, "run-a.x1").encode()
    assert decode_entry("acme", raw, "run-a.x1") == rec
    assert decode_entry("acme", raw, "run-b.x1") is None
    assert decode_entry("acme", raw, "run-a.x2") is None


def test_redis_error_becomes_cache_unavailable() -> None:
    """A Redis failure surfaces as CacheUnavailableError, and the breaker then fails fast."""
    server = fakeredis.FakeServer()
    broken = fakeredis.FakeRedis(server=server)
    cache = RedisCache("redis://fakeredis.invalid/0", client=broken, breaker_seconds=60)
    server.connected = False
    with pytest.raises(CacheUnavailableError):
        cache.get("acme")
    server.connected = True
    with pytest.raises(CacheUnavailableError):
        cache.get("acme")  # circuit still open: no round trip
    assert cache.fence("acme", 0) == 1  # fences always try Redis
    assert cache.get("acme") is None  # and a success closes the circuit


# --- KeyResolver --------------------------------------------------------------------------


@dataclass
class CountingStorage:
    """Our SqliteStorage, counting the verifier's storage reads."""

    inner: Storage
    key_reads: list[str] = field(default_factory=list)
    directory_reads: int = 0

    def transaction(self) -> AbstractContextManager[Tx]:
        """Delegate."""
        return self.inner.transaction()

    def load_key_record(self, tenant_id: str) -> KeyRecord | None:
        """Count, then delegate."""
        self.key_reads.append(tenant_id)
        return self.inner.load_key_record(tenant_id)

    def load_verification_state(
        self, tenant_id: str, subject: str, jti: str
    ) -> VerificationState | None:
        """Count, then delegate."""
        self.key_reads.append(tenant_id)
        return self.inner.load_verification_state(tenant_id, subject, jti)

    def load_tenant_ids(self, limit: int) -> frozenset[str] | None:
        """Count (apart from key reads), then delegate."""
        self.directory_reads += 1
        return self.inner.load_tenant_ids(limit)

    def load_revocations(
        self, tenant_id: str, *, revoked_since: int, expiring_after: int
    ) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
        """Delegate (not a key read: it only accompanies a fill)."""
        return self.inner.load_revocations(
            tenant_id, revoked_since=revoked_since, expiring_after=expiring_after
        )

    def ping(self) -> None:
        """Delegate."""
        self.inner.ping()

    def close(self) -> None:
        """Delegate."""
        self.inner.close()


@pytest.fixture
def counting(svc: Services) -> CountingStorage:
    """The svc storage wrapped so that key-record reads are counted."""
    return CountingStorage(svc.storage)


@pytest.fixture
def resolver(counting: CountingStorage, cache: RedisCache) -> KeyResolver:
    """A KeyResolver over the counting storage and the svc fakeredis cache."""
    return KeyResolver(counting, cache, MasterKeyring(MASTER_KEY), CachePolicy())


def test_miss_reads_storage_once_and_fills(
    resolver: KeyResolver,
    counting: CountingStorage,
    cache: RedisCache,
    fake_redis: fakeredis.FakeRedis,
    acme: Tenant,
) -> None:
    """A cache miss reads storage once and fills the cache with the tenant's record."""
    assert cache.get("acme") is None  # changes seal the cache; they do not warm it
    assert resolver.verification_key("acme").material == ACME_SECRET
    assert counting.key_reads == ["acme"]
    assert cache.get("acme") == KeyRecord.of(acme)
    fake_redis.delete(cache_key("acme", "entry"))  # as if the entry had expired
    assert resolver.verification_key("acme").material == ACME_SECRET
    assert counting.key_reads == ["acme", "acme"]


def test_hit_costs_no_storage_read(
    resolver: KeyResolver, counting: CountingStorage, acme: Tenant
) -> None:
    """Once cached, resolving a key reads no storage at all."""
    resolver.verification_key("acme")
    counting.key_reads.clear()
    for _ in range(3):
        assert resolver.verification_key("acme").material == ACME_SECRET
    assert counting.key_reads == []


def test_unknown_tenants_are_ruled_out_by_the_directory(
    resolver: KeyResolver,
    counting: CountingStorage,
    fake_redis: fakeredis.FakeRedis,
    acme: Tenant,
) -> None:
    """Unknown ids cost no key read and leave nothing in the cache: one read of the tenant
    ids serves them all, until a creation renews the directory."""
    for tid in ("nobody", "nobody", "ghost-1", "ghost-2"):
        assert resolver.verification_key(tid) is None
    assert counting.key_reads == [] and counting.directory_reads == 1
    assert fake_redis.keys("tenantauth:{nobody}*") == []
    assert fake_redis.keys("tenantauth:{ghost*") == []


def test_a_created_tenant_is_known_at_once(
    counting: CountingStorage, cache: RedisCache, svc: Services, acme: Tenant
) -> None:
    """A verifier whose directory predates a creation re-reads it when the creation renewed
    the directory, so the new tenant's key resolves the moment create returns."""
    policy = CachePolicy(directory_min_interval=0)
    resolver = KeyResolver(counting, cache, MasterKeyring(MASTER_KEY), policy)
    assert resolver.verification_key("beta") is None
    create_tenant(svc, "beta", "Beta", secret=secret_text(OTHER_SECRET))
    assert resolver.verification_key("beta").material == OTHER_SECRET
    assert counting.directory_reads == 2 and counting.key_reads == ["beta"]


def test_a_lost_directory_is_read_again(
    counting: CountingStorage, cache: RedisCache, fake_redis: fakeredis.FakeRedis
) -> None:
    """A cache that lost the directory key (flush, restart, eviction) has a new incarnation,
    so the ids are read again rather than trusted."""
    policy = CachePolicy(directory_min_interval=0)
    resolver = KeyResolver(counting, cache, MasterKeyring(MASTER_KEY), policy)
    assert resolver.verification_key("nobody") is None
    fake_redis.delete("tenantauth:directory")
    assert resolver.verification_key("nobody") is None
    assert counting.directory_reads == 2 and counting.key_reads == []


@pytest.mark.parametrize(
    ("policy", "reads"),
    [(CachePolicy(directory_max_age=0), 3), (CachePolicy(directory_limit=0), 1)],
    ids=["max_age", "limit"],
)
def test_directory_max_age_and_limit(
    counting: CountingStorage, cache: RedisCache, acme: Tenant, policy: CachePolicy, reads: int
) -> None:
    """max_age: a directory is re-read once it is that old, incarnation or not; limit: with
    more tenants than that it rules nothing out, and unknown ids are negative-cached."""
    resolver = KeyResolver(counting, cache, MasterKeyring(MASTER_KEY), policy)
    for _ in range(3):
        assert resolver.verification_key("nobody") is None
    assert counting.directory_reads == reads
    assert counting.key_reads == ([] if policy.directory_limit else ["nobody"])


def test_inactive_tenant_has_no_key(
    resolver: KeyResolver,
    counting: CountingStorage,
    svc: Services,
    fake_redis: fakeredis.FakeRedis,
    acme: Tenant,
) -> None:
    """A suspended tenant resolves to no key, from storage and then from the cache alike."""
    update_tenant(svc, "acme", TenantChanges(status=TenantStatus.SUSPENDED))
    fake_redis.delete(cache_key("acme", "entry"))
    assert resolver.verification_key("acme") is None
    assert resolver.verification_key("acme") is None
    assert counting.key_reads == ["acme"]


def test_rotation_replaces_cached_key(svc: Services, acme: Tenant) -> None:
    """After a rotation the next lookup gets the new key, never the cached old one."""
    assert svc.keys.verification_key("acme").material == ACME_SECRET
    rotated = rotate_tenant(svc, "acme")
    assert rotated.sealed_secret is not None
    new_key = svc.keyring.open(rotated.key_binding, rotated.sealed_secret)
    assert svc.keys.verification_key("acme").material == new_key != ACME_SECRET


def test_cache_outage_falls_back_to_storage(svc: Services, acme: Tenant) -> None:
    """With Redis down, lookups are answered by storage (latency, not failure)."""
    server = fakeredis.FakeServer()
    down = RedisCache("redis://fakeredis.invalid/0", client=fakeredis.FakeRedis(server=server))
    server.connected = False
    counting = CountingStorage(svc.storage)
    resolver = KeyResolver(counting, down, svc.keyring, CachePolicy())
    assert resolver.verification_key("acme").material == ACME_SECRET
    assert resolver.verification_key("acme").material == ACME_SECRET
    assert counting.key_reads == ["acme", "acme"]
