"""Storage and cache contracts for subject revocation points and the jti denylist."""

from __future__ import annotations

import redis

from tenantauth.cache.redis import RedisCache, jti_key, subject_key
from tenantauth.domain.models import KeyRecord, Revocations, TenantStatus, VerificationState
from tenantauth.storage import MigratableStorage
from tests.cache_support import fill_now
from tests.contract.factories import KEYRING, tenant


def seeded(storage: MigratableStorage, *ids: str) -> None:
    """Insert live tenants with these ids."""
    with storage.transaction() as tx:
        for tid in ids:
            tx.insert_tenant(tenant(tid))


def test_subject_versions_start_at_zero_and_rise(storage: MigratableStorage) -> None:
    """A never-revoked subject is at 0; each bump returns the next version."""
    seeded(storage, "acme")
    with storage.transaction() as tx:
        assert tx.revocations.subject_version("acme", "alice") == 0
        assert tx.revocations.bump_subject("acme", "alice", 100) == 1
        assert tx.revocations.bump_subject("acme", "alice", 200) == 2
        assert tx.revocations.subject_version("acme", "alice") == 2


def test_revoke_jti_is_idempotent(storage: MigratableStorage) -> None:
    """Revoking the same jti twice is fine and keeps one row."""
    seeded(storage, "acme")
    with storage.transaction() as tx:
        tx.revocations.revoke_jti("acme", "j1", 500, 100)
        tx.revocations.revoke_jti("acme", "j1", 500, 101)
    _, jtis = storage.load_revocations("acme", revoked_since=0, expiring_after=0)
    assert jtis == [("j1", 500)]


def test_verification_state_reads_all_three(storage: MigratableStorage) -> None:
    """One read returns the key record, the subject's version and the jti mark."""
    seeded(storage, "acme")
    with storage.transaction() as tx:
        tx.revocations.bump_subject("acme", "alice", 100)
        tx.revocations.revoke_jti("acme", "j1", 500, 100)
    state = storage.load_verification_state("acme", "alice", "j1")
    assert state is not None
    assert state.record == storage.load_key_record("acme")
    assert (state.subject_version, state.jti_revoked) == (1, True)
    other = storage.load_verification_state("acme", "bob", "j2")
    assert other is not None
    assert (other.subject_version, other.jti_revoked) == (0, False)
    assert storage.load_verification_state("nobody", "alice", "j1") is None


def test_load_revocations_respects_the_horizons(storage: MigratableStorage) -> None:
    """Only revocations recent enough, and jtis not yet expired, are returned."""
    seeded(storage, "acme")
    with storage.transaction() as tx:
        tx.revocations.bump_subject("acme", "old", 100)
        tx.revocations.bump_subject("acme", "new", 900)
        tx.revocations.revoke_jti("acme", "expired", 400, 100)
        tx.revocations.revoke_jti("acme", "live", 2000, 100)
    subjects, jtis = storage.load_revocations("acme", revoked_since=500, expiring_after=1000)
    assert subjects == [("new", 1, 900)]
    assert jtis == [("live", 2000)]


def test_revocations_are_isolated_per_tenant(storage: MigratableStorage) -> None:
    """A revocation in tenant A says nothing about the same subject or jti in tenant B."""
    seeded(storage, "tenant-a", "tenant-b")
    with storage.transaction() as tx:
        tx.revocations.bump_subject("tenant-a", "alice", 100)
        tx.revocations.revoke_jti("tenant-a", "j1", 5000, 100)
    state = storage.load_verification_state("tenant-b", "alice", "j1")
    assert state is not None
    assert (state.subject_version, state.jti_revoked) == (0, False)
    assert storage.load_revocations("tenant-b", revoked_since=0, expiring_after=0) == ([], [])


def record(generation: int = 1) -> KeyRecord:
    """An active record of acme."""
    return KeyRecord("acme", generation, TenantStatus.ACTIVE, KEYRING.seal("acme", b"k" * 32))


def test_get_state_is_none_without_the_entry(redis_cache: RedisCache) -> None:
    """Revocation marks alone are never an answer: without the tenant entry it is a miss."""
    later = 600
    redis_cache.revoke_subject("acme", "alice", 3, later)
    assert redis_cache.get_state("acme", "alice", "j1").state is None


def test_get_state_reads_entry_version_and_mark(redis_cache: RedisCache) -> None:
    """With the entry present, one MGET gives record, version (0 if none) and jti mark."""
    later, rec = 600, record()
    assert fill_now(redis_cache, rec, 60)
    redis_cache.revoke_subject("acme", "alice", 2, later)
    redis_cache.revoke_jti("acme", "j1", later)
    assert redis_cache.get_state("acme", "alice", "j1").state == VerificationState(rec, 2, True)
    assert redis_cache.get_state("acme", "bob", "j2").state == VerificationState(rec, 0, False)


def test_fill_carries_revocations_and_never_lowers_a_version(redis_cache: RedisCache) -> None:
    """A fill writes its revocations with the entry; an older snapshot cannot lower a version."""
    later = 600
    redis_cache.revoke_subject("acme", "alice", 5, later)
    stale = Revocations(subjects=(("alice", 2, later), ("bob", 1, later)), jtis=(("j9", later),))
    rec = record()
    assert fill_now(redis_cache, rec, 60, stale)
    state = redis_cache.get_state("acme", "alice", "j9").state
    assert state == VerificationState(rec, 5, True)
    assert redis_cache.get_state("acme", "bob", "x").state.subject_version == 1  # type: ignore[union-attr]


def test_revoke_subject_never_lowers(redis_cache: RedisCache) -> None:
    """revoke_subject keeps the highest version it has seen."""
    later = 600
    fill_now(redis_cache, record(), 60)
    redis_cache.revoke_subject("acme", "alice", 4, later)
    redis_cache.revoke_subject("acme", "alice", 3, later)
    assert redis_cache.get_state("acme", "alice", "j").state.subject_version == 4  # type: ignore[union-attr]


def test_marks_expire_at_their_horizon(redis_cache: RedisCache, redis_url: str) -> None:
    """Revocation marks carry relative TTLs (never non-positive, which Redis refuses)."""
    redis_cache.revoke_jti("acme", "soon", 100)
    redis_cache.revoke_jti("acme", "floor", -10)  # already expired: kept the minimum 1 s
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < client.ttl(jti_key("acme", "soon")) <= 100
        assert 0 < client.ttl(jti_key("acme", "floor")) <= 1
        assert subject_key("acme", "x\n") != subject_key("acme", "x")
        assert subject_key("acme", "a").startswith("tenantauth:{acme}:sub:")
    finally:
        client.close()


def test_fence_keeps_revocation_marks(redis_cache: RedisCache) -> None:
    """Rotating a tenant (fence) drops its entry but never its revocation marks."""
    later = 600
    fill_now(redis_cache, record(1), 60)
    redis_cache.revoke_subject("acme", "alice", 2, later)
    n = redis_cache.fence("acme", 1)
    assert fill_now(redis_cache, record(n), 60)
    assert redis_cache.get_state("acme", "alice", "j").state.subject_version == 2  # type: ignore[union-attr]


def test_snapshot_pages_walk_every_live_tenant_with_its_own_revocations(
    storage: MigratableStorage,
) -> None:
    """load_snapshot_page (warming memory): live and suspended tenants in id order, a page
    at a time; each with exactly its own revocations within the horizons; tombstones, and
    the revocations left of them, are skipped."""
    seeded(storage, "a-1", "b-2", "d-4")
    with storage.transaction() as tx:
        tx.insert_tenant(tenant("c-3", status=TenantStatus.DELETED, sealed_secret=None))
        tx.insert_tenant(tenant("e-5", status=TenantStatus.SUSPENDED))
        tx.revocations.bump_subject("a-1", "alice", 900)
        tx.revocations.bump_subject("a-1", "old", 100)  # older than the horizon
        tx.revocations.revoke_jti("b-2", "live", 2000, 100)
        tx.revocations.revoke_jti("b-2", "expired", 400, 100)
        tx.revocations.revoke_jti("d-4", "j", 2000, 100)
        tx.revocations.bump_subject("c-3", "gone", 900)  # in the range of the second page
    horizons = {"revoked_since": 500, "expiring_after": 1000}
    first = storage.load_snapshot_page("", 2, **horizons)
    assert [(r.tenant_id, s, j) for r, s, j in first] == [
        ("a-1", [("alice", 1, 900)], []),
        ("b-2", [], [("live", 2000)]),
    ]
    assert first[0][0] == storage.load_key_record("a-1")
    second = storage.load_snapshot_page("b-2", 2, **horizons)
    assert [(r.tenant_id, s, j) for r, s, j in second] == [
        ("d-4", [], [("j", 2000)]),
        ("e-5", [], []),
    ]
    assert second[1][0].status is TenantStatus.SUSPENDED
    assert storage.load_snapshot_page("e-5", 2, **horizons) == []
