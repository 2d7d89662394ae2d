"""The tenant directory: which ids name a tenant, so that a verifier answers a token of an
unknown tenant without a storage read (issue 4, S11; docs/design.md, "Tenant directory").

Each process keeps the set of tenant ids it last read from storage, tagged with the cache's
*directory incarnation* read just before that storage read. Creating a tenant ends the
incarnation after its commit (``Cache.renew_directory``), and a cache that restarted, was
flushed or restored has none of ours, so a set whose tag is still the cache's current
incarnation holds every tenant committed before the incarnation began. The set only ever rules
ids *out*: it may still hold deleted tenants, whose tokens then take the usual way and fail
there. Without a shared cache (embedded mode) or while it is down, it rules nothing out.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from tenantauth.domain.policy import CachePolicy
from tenantauth.domain.ports import Cache, Storage
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.domain.verifying.flight import SingleFlight
from tenantauth.errors import CacheUnavailableError, StorageUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The ids read under one directory incarnation (None: more than the limit)."""

    incarnation: str
    ids: frozenset[str] | None
    loaded_at: float  # time.monotonic()


_EMPTY = _Snapshot("", frozenset(), float("-inf"))


class TenantDirectory:
    """Rules out tenant ids that name no tenant, from a per-process set kept exact by the
    cache's directory incarnation."""

    def __init__(
        self,
        storage: Storage,
        cache: Cache,
        policy: CachePolicy,
        telemetry: Telemetry = NULL_TELEMETRY,
    ) -> None:
        """Rules from ``policy``: re-read the ids at least every ``directory_max_age`` (a
        backstop for a creation whose renewal never reached the cache) and at most every
        ``directory_min_interval`` (a burst of creations must not turn every miss into a read
        of all ids); keep no set beyond ``directory_limit`` tenants; a read may take
        ``load_wait``; each read is reported to ``telemetry``."""
        self._storage = storage
        self._telemetry = telemetry
        self._cache = cache
        self._max_age = policy.directory_max_age
        self._min_interval = policy.directory_min_interval
        self._limit = policy.directory_limit
        self._snapshot = _EMPTY
        self._flights: SingleFlight[_Snapshot] = SingleFlight(policy.load_wait)

    def rules_out(self, tenant_id: str, seen: str = "") -> bool:
        """Return True only if ``tenant_id`` certainly names no tenant created before this
        call; False if it names one, or if the directory cannot tell (no shared cache, the
        cache unavailable, more tenants than the limit). ``seen``: the directory incarnation
        the caller's cache read of the tenant saw ("" for none: it is read, or claimed, here).

        Raises ``StorageUnavailableError`` when the ids had to be read again and storage is
        down: the caller's own storage read of the tenant would fail the same way.
        """
        try:
            incarnation = seen or self._cache.directory()
        except CacheUnavailableError:
            return False
        if not incarnation:
            return False
        ids = self._ids_under(incarnation)
        return ids is not None and tenant_id not in ids

    def _ids_under(self, incarnation: str) -> frozenset[str] | None:
        snapshot = self._snapshot
        if self._in_force(snapshot, incarnation):
            return snapshot.ids
        if snapshot.incarnation != incarnation and self._age(snapshot) < self._min_interval:
            return None  # outdated, and read too recently to read again: cannot tell
        try:
            return self._flights.run(incarnation, lambda waited: self._load(incarnation)).ids
        except StorageUnavailableError:
            if snapshot.incarnation != incarnation:
                raise
            # Only old, not outdated: no creation has ended the incarnation it was read under.
            log.debug("tenant directory not refreshed (storage unavailable); still in force")
            return snapshot.ids

    def _load(self, incarnation: str) -> _Snapshot:
        """Read the ids (after ``incarnation`` was read, which is what makes it vouch for
        them) unless a read under it that waited for ours already did."""
        current = self._snapshot
        if self._in_force(current, incarnation):
            return current
        ids = self._storage.load_tenant_ids(self._limit)
        snapshot = _Snapshot(incarnation, ids, time.monotonic())
        # Last writer wins, even if it read under an older incarnation: a snapshot whose tag
        # is not the cache's current one is never trusted, only read again.
        self._snapshot = snapshot
        self._telemetry.directory_loaded(len(ids) if ids is not None else None)
        count = len(ids) if ids is not None else f"over {self._limit}"
        log.debug("directory load tenants=%s pid=%d", count, os.getpid())
        return snapshot

    def _in_force(self, snapshot: _Snapshot, incarnation: str) -> bool:
        """Whether ``snapshot`` may rule ids out under ``incarnation``."""
        return snapshot.incarnation == incarnation and self._age(snapshot) < self._max_age

    @staticmethod
    def _age(snapshot: _Snapshot) -> float:
        return time.monotonic() - snapshot.loaded_at
