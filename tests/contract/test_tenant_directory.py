"""The tenant directory (domain/verifying/directory.py) on real PostgreSQL and Redis: unknown
ids are answered without a database read, and no verifier rules out a tenant whose creation
returned.

Each test stops a party at a dangerous point, as tests/contract/test_fence_race.py does.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import pytest
import redis

from tenantauth.cache.redis import DIRECTORY_KEY
from tenantauth.domain import tenants
from tenantauth.domain.services import Services
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.errors import (
    CacheUnavailableError,
    StorageUnavailableError,
    UnconfirmedChangeError,
)
from tests.contract.test_fence_race import WAIT, in_thread, mint, verifier_on, with_cache

FOREIGN = "0123456789abcdef0123456789abcdef01234567.snapshot"


class PausingIdsStorage:
    """Our storage, counting reads of the tenant ids; one read can be held after it read."""

    def __init__(self, inner: Any, *, pause: bool = False) -> None:
        self.inner = inner
        self.id_reads = 0
        self.key_reads = 0
        self.pause = pause
        self.paused = threading.Event()
        self.resume = threading.Event()

    def load_tenant_ids(self, limit: int) -> Any:
        """Read the ids, then (once, if asked to) stop until released."""
        self.id_reads += 1
        found = self.inner.load_tenant_ids(limit)
        if self.pause:
            self.pause = False
            self.paused.set()
            assert self.resume.wait(WAIT)
        return found

    def load_key_record(self, tenant_id: str) -> Any:
        """Count, then delegate."""
        self.key_reads += 1
        return self.inner.load_key_record(tenant_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FailingRenewalCache:
    """Our cache, but the directory cannot be renewed (the cache went away after the commit)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def renew_directory(self) -> None:
        """Fail as an unreachable Redis does."""
        raise CacheUnavailableError("the cache is unavailable")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def resolver_on(svc: Services, storage: Any, *, min_interval: float = 0.0) -> KeyResolver:
    """A resolver of its own (its own directory), as another process would have; by default
    it may re-read the ids at once (``directory_min_interval`` 0)."""
    policy = replace(svc.caching, directory_min_interval=min_interval)
    return KeyResolver(storage, svc.cache, svc.keyring, policy)


def set_directory(redis_url: str, value: str | None) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        client.delete(DIRECTORY_KEY) if value is None else client.set(DIRECTORY_KEY, value)
    finally:
        client.close()


def test_unknown_ids_cost_no_database_read(pg_services: Services) -> None:
    """Any number of unknown ids: one read of the ids, no key read, no cache key."""
    tenants.create_tenant(pg_services, "acme", "Acme")
    storage = PausingIdsStorage(pg_services.storage)
    resolver = resolver_on(pg_services, storage)
    for n in range(50):
        assert resolver.verification_key(f"ghost-{n}") is None
    assert resolver.verification_key("acme") is not None
    assert (storage.id_reads, storage.key_reads) == (1, 1)


def test_a_directory_read_before_a_creation_never_hides_the_tenant(
    pg_services: Services,
) -> None:
    """The race: a verifier reads the ids (no "beta" yet) and stalls; beta is created and the
    create call returns; the verifier then stores what it read. Every lookup of beta after
    the create returned must find it: the stale set is tagged with an ended incarnation."""
    svc = pg_services
    tenants.create_tenant(svc, "acme", "Acme")
    storage = PausingIdsStorage(svc.storage, pause=True)
    resolver = resolver_on(svc, storage)
    stalled, out = in_thread(lambda: resolver.verification_key("ghost"))
    assert storage.paused.wait(WAIT)
    tenants.create_tenant(svc, "beta", "Beta")  # returned
    storage.resume.set()
    stalled.join(WAIT)
    assert out == [None]
    assert resolver.verification_key("beta") is not None
    verifier_on(svc, storage=storage).verify(mint(svc, "beta"))
    assert storage.id_reads == 2


def test_a_directory_from_another_server_is_not_trusted(
    pg_services: Services, redis_url: str
) -> None:
    """A Redis restored from a snapshot (or failed over) shows a directory incarnation of
    another server — possibly the very one a process's set is tagged with, from before a
    creation's renewal. It is never adopted, so the set is read again and the tenant found."""
    svc = pg_services
    storage = PausingIdsStorage(svc.storage)
    resolver = resolver_on(svc, storage)
    set_directory(redis_url, FOREIGN)  # what the old server had
    assert resolver.verification_key("beta") is None  # ids read, without beta
    tenants.create_tenant(svc, "beta", "Beta")  # renews the directory
    set_directory(redis_url, FOREIGN)  # restored from a snapshot taken before the renewal
    assert resolver.verification_key("beta") is not None
    assert storage.id_reads == 2 and svc.cache.directory() != FOREIGN


def test_creations_in_a_burst_cost_no_reread_yet_hide_nothing(pg_services: Services) -> None:
    """Within ``directory_min_interval`` of its last read, an outdated set is not read again:
    the ids it cannot vouch for take the usual way (one key read each), so a burst of
    creations costs no read of all ids per miss, and every new tenant is found."""
    svc = pg_services
    storage = PausingIdsStorage(svc.storage)
    resolver = resolver_on(svc, storage, min_interval=60.0)
    assert resolver.verification_key("ghost") is None
    for n in range(3):
        tenants.create_tenant(svc, f"new-{n}", "New")
        assert resolver.verification_key(f"new-{n}") is not None
    assert resolver.verification_key("ghost") is None
    assert storage.id_reads == 1 and storage.key_reads == 4


def test_a_lost_directory_key_is_claimed_again(pg_services: Services, redis_url: str) -> None:
    """A flush or eviction of the directory key: a new incarnation, one new read per process."""
    storage = PausingIdsStorage(pg_services.storage)
    resolver = resolver_on(pg_services, storage)
    assert resolver.verification_key("ghost") is None
    set_directory(redis_url, None)
    for _ in range(3):
        assert resolver.verification_key("ghost") is None
    assert storage.id_reads == 2 and storage.key_reads == 0


def test_an_unrenewed_creation_is_unconfirmed(pg_services: Services) -> None:
    """A creation whose directory renewal fails (twice) is committed but answered 503
    (change_unconfirmed): success is only reported once every verifier will know the id."""
    svc = pg_services
    failing = with_cache(svc, FailingRenewalCache(svc.cache))
    with pytest.raises(UnconfirmedChangeError):
        tenants.create_tenant(failing, "beta", "Beta")
    assert tenants.get_tenant(svc, "beta").id == "beta"


def test_storage_down_keeps_a_current_directory_in_force(pg_services: Services) -> None:
    """A directory that is only old (max age passed, incarnation unchanged) still rules out
    unknown ids when storage cannot be read; one whose incarnation ended does not."""
    svc = pg_services
    storage = PausingIdsStorage(svc.storage)
    aging = replace(svc.caching, directory_max_age=0, directory_min_interval=0)
    resolver = KeyResolver(storage, svc.cache, svc.keyring, aging)
    assert resolver.verification_key("ghost") is None
    storage.inner = _DownStorage()
    assert resolver.verification_key("ghost") is None  # old but current: still in force
    svc.cache.renew_directory()
    with pytest.raises(StorageUnavailableError):
        resolver.verification_key("ghost")


class _DownStorage:
    """Storage that cannot be reached: every call raises ``StorageUnavailableError``."""

    def __getattr__(self, name: str) -> Any:
        def down(*args: Any, **kwargs: Any) -> Any:
            raise StorageUnavailableError("the database is unavailable")

        return down
