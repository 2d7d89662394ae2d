"""Warming a worker's memory: right after the worker registers, every tenant (up to the
memory's capacity) is loaded from storage a page at a time and offered to memory, each page
fenced exactly as a single fill is (docs/design.md, "Warming memory").

Without it a worker fills memory one tenant at a time, on first sight and within a budget of
database reads (``MemoryPolicy.fills_per_second``); over 100,000 tenants picked at random that
took tens of minutes, and until then most verifications paid the shared cache's round trip
(docs/performance-scale.md). A page costs three indexed range reads for ``warm_page`` tenants.

Safety is the single fill's argument, per tenant: the ticket (cursor and registration epoch)
is noted before the page is read, so a change whose invalidation the worker had applied is in
what the page reads, and one it applies later raises the tenant's floor above the ticket (the
offer is refused) or drops what was inserted. A page read under one registration is never
offered under another (the epoch).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tenantauth.domain.models import StoredTenant, TenantSnapshot, TenantStatus
from tenantauth.domain.policy import MemoryPolicy
from tenantauth.domain.ports import Storage
from tenantauth.domain.telemetry import NULL_TELEMETRY, Telemetry
from tenantauth.domain.verifying.memory import VerifyMemory
from tenantauth.errors import StorageUnavailableError

log = logging.getLogger(__name__)
#: After a storage outage, the page is read again this much later (while still registered).
RETRY_SECONDS = 1.0


def snapshot_of(stored: StoredTenant, max_revocations: int) -> TenantSnapshot | None:
    """The snapshot memory may hold of ``stored``, or None when the tenant should not be held
    (deleted, or more live revocations than ``max_revocations``). A tenant that is not active
    holds no revocations: none of its tokens verifies."""
    record, subjects, jtis = stored
    if record.status is TenantStatus.ABSENT:
        return None
    if record.status is not TenantStatus.ACTIVE:
        return TenantSnapshot(record)
    if len(subjects) + len(jtis) > max_revocations:
        return None
    versions = {subject: version for subject, version, _ in subjects}
    return TenantSnapshot(record, versions, frozenset(jti for jti, _ in jtis))


class MemoryWarmer:
    """Warms one worker's memory once per registration, on a thread of its own.

    ``horizons`` returns the (revoked_since, expiring_after) bounds of the revocations worth
    holding now; ``prepare`` turns a snapshot into what memory holds (the resolver opens the
    tenant's key there, so that verifying from memory never decrypts); ``retain`` is called
    after each page is in memory: what warming made will live about as long as the worker,
    and the composition root passes ``gc.freeze`` so that the collector's full passes never
    scan it again (docs/design.md, "Garbage collection").
    """

    def __init__(
        self,
        storage: Storage,
        memory: VerifyMemory,
        policy: MemoryPolicy,
        horizons: Callable[[], tuple[int, int]],
        prepare: Callable[[TenantSnapshot], TenantSnapshot],
        *,
        sleep: Callable[[float], None] = time.sleep,
        telemetry: Telemetry = NULL_TELEMETRY,
        retain: Callable[[], None] | None = None,
    ) -> None:
        """Wire the warmer; nothing runs until ``ensure``; ``telemetry`` is told of each
        warming that finished."""
        self._storage = storage
        self._memory = memory
        self._policy = policy
        self._horizons = horizons
        self._prepare = prepare
        self._sleep = sleep
        self._telemetry = telemetry
        self._retain = retain
        self._lock = threading.Lock()
        self._epoch = -1  # the registration epoch last warmed, or being warmed

    def ensure(self) -> None:
        """Start warming on a thread of its own unless this registration was already warmed
        (or is being warmed): cheap enough to call on every verification memory missed on a
        live lease (``warm`` stops at once under one that is not)."""
        epoch = self._memory.epoch
        if epoch == self._epoch:
            return
        with self._lock:
            if epoch == self._epoch:
                return
            self._epoch = epoch
        thread = threading.Thread(
            target=self.warm, args=(epoch,), name="tenantauth-memory-warm", daemon=True
        )
        thread.start()

    def warm(self, epoch: int) -> int:
        """Offer every tenant to memory, a page at a time, while the registration of
        ``epoch`` lasts and memory has room. Returns how many tenants were inserted."""
        started, after, inserted, pages, outages = time.monotonic(), "", 0, 0, 0
        while self._memory.size() < self._memory.capacity:
            ticket = self._memory.note()  # before the read (model: NOTE_AFTER_READ)
            if ticket.epoch != epoch or not self._memory.live():
                log.info("memory warming stopped: this worker registered again or lost its lease")
                return inserted
            page = self._read_page(after)
            if page is None:  # storage unavailable: read the same page again a little later
                outages += 1
                if outages == 1:
                    log.warning("storage unavailable while warming memory; retrying")
                self._sleep(RETRY_SECONDS)
                continue
            if not page:
                break
            for stored in page:
                snapshot = snapshot_of(stored, self._policy.max_revocations)
                if snapshot is not None and self._memory.offer(ticket, self._prepare(snapshot)):
                    inserted += 1
            after, pages = page[-1][0].tenant_id, pages + 1
            if self._retain is not None:
                self._retain()
            self._sleep(self._policy.warm_pause)  # leave the cores to verification meanwhile
        seconds = time.monotonic() - started
        log.info("memory warmed: %d tenants in %.1f s (%d pages)", inserted, seconds, pages)
        self._telemetry.memory_warmed(inserted, seconds)
        return inserted

    def _read_page(self, after: str) -> list[StoredTenant] | None:
        """The next page after ``after`` ([] at the end), or None if storage is unavailable."""
        revoked_since, expiring_after = self._horizons()
        try:
            return self._storage.load_snapshot_page(
                after,
                self._policy.warm_page,
                revoked_since=revoked_since,
                expiring_after=expiring_after,
            )
        except StorageUnavailableError:
            return None
