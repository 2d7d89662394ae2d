"""Warming memory (domain/verifying/warming.py) on real PostgreSQL and Redis: a registered
worker loads every tenant a page at a time, and a page in flight across a change is fenced as a
single fill is: by the floor (race 5) and by the registration epoch (race 3). Each race runs
intact and without the step that defeats it, as in tests/contract/test_memory_race.py, with the
single fills switched off (``fills_per_second=0``) so that the page is the only read that fills."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tenantauth.domain import revocations, tenants
from tenantauth.domain.models import TenantStatus
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import TenantChanges
from tests.contract.test_memory_race import (
    LEASE,
    WAIT,
    GatedLeases,
    Worker,
    check,
    mint,
    steps,
    writer,
)


class PausingPages:
    """Storage whose next page read (the warming), once armed, stops after reading."""

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``; it counts every page read."""
        self.inner = inner
        self.armed = False
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.pages = 0

    def load_snapshot_page(self, *args: Any, **kwargs: Any) -> Any:
        """Read; when armed, wait to be released before handing back what was read."""
        self.pages += 1
        found = self.inner.load_snapshot_page(*args, **kwargs)
        if self.armed:
            self.armed = False
            self.paused.set()
            assert self.resume.wait(WAIT)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _until(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _start(worker: Worker, token: str) -> None:
    """Verify until the lease is live and a verification has asked for warming."""
    _until(lambda: worker.accepts(token) and worker.memory.live(), "the lease never went live")
    worker.accepts(token)  # memory missed on a live lease: warming starts


def test_a_registered_worker_holds_every_tenant_and_their_revocations(
    pg_services: Services, leases: Any
) -> None:
    """Five tenants, pages of two: the active and suspended ones are held, the deleted one
    is not, and ``retain`` (gc.freeze in a server) runs after each page; what memory
    answers matches the exact path (a revoked subject, a revoked jti, a suspended tenant are
    all refused from memory, with no read of storage)."""
    svc = writer(pg_services, leases, frozenset())
    for name in ("t1", "t2", "t3", "t4", "t5"):
        tenants.create_tenant(svc, name, name.upper())
    tokens = {name: mint(svc, name) for name in ("t1", "t2", "t3", "t4")}
    revocations.revoke_subject(svc, "t2", "user-1")
    jti_revoked = mint(svc, "t3")
    assert revocations.revoke_token(svc, jti_revoked)
    tenants.update_tenant(svc, "t4", TenantChanges(status=TenantStatus.SUSPENDED))
    tenants.delete_tenant(svc, "t5")
    pages = PausingPages(svc.storage)
    retained: list[int] = []  # memory's size at each call of ``retain``

    def retain() -> None:
        retained.append(worker.memory.size())

    worker = Worker(svc, leases, frozenset(), storage=pages, warm=True, warm_page=2, retain=retain)
    try:
        _start(worker, tokens["t1"])
        _join_warming()
        assert worker.memory.size() == 4
        assert pages.pages == 3  # two full pages, then the one that ends the scan
        assert retained == [2, 4], "retain is called after each page is in memory"
        assert worker.memory.get("t5") is None
        read_before = pages.pages
        assert worker.accepts(tokens["t1"])
        assert worker.accepts(tokens["t3"])
        assert not worker.accepts(tokens["t2"])  # subject revoked
        assert not worker.accepts(jti_revoked)  # jti revoked
        assert not worker.accepts(tokens["t4"])  # suspended
        assert pages.pages == read_before
    finally:
        worker.stop()


@pytest.mark.parametrize("skip", steps("floor"))
def test_a_page_in_flight_across_an_invalidation_is_refused(
    pg_services: Services, leases: Any, skip: frozenset[str]
) -> None:
    """Race 5 for a page: warming reads the old row, the rotation is applied, acknowledged
    and returns, then warming offers the old row: refused by the floor."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    pages = PausingPages(svc.storage)
    pages.armed = True
    worker = Worker(svc, leases, skip, storage=pages, warm=True, fills_per_second=0)
    try:
        _start(worker, old)
        assert pages.paused.wait(WAIT)  # the page holds the pre-rotation row
        assert worker.memory.get("acme") is None
        tenants.rotate_tenant(svc, "acme")  # applied and acknowledged by the listener
        pages.resume.set()
        _join_warming()
        check(skip, worker.accepts(old))
    finally:
        pages.resume.set()
        worker.stop()


@pytest.mark.parametrize("skip", steps("epoch"))
def test_a_page_read_under_one_registration_is_not_offered_under_the_next(
    pg_services: Services, leases: Any, skip: frozenset[str]
) -> None:
    """Race 3 for a page: warming reads the old row and stalls; the listener stalls too, its
    lease lapses, the rotation returns; the worker registers again (clearing its floors);
    the stalled page must not be inserted under the new registration."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    pages = PausingPages(svc.storage)
    pages.armed = True
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip, storage=pages, warm=True, fills_per_second=0)
    try:
        _start(worker, old)
        assert pages.paused.wait(WAIT)  # the page noted its ticket and read the old row
        time.sleep(LEASE)  # the registry grows one lease old
        gated.gate.clear()
        assert gated.waiting.wait(WAIT)
        tenants.rotate_tenant(svc, "acme")  # waits out the stalled lease
        gated.gate.set()  # the listener applies, its renewal is refused, it registers
        time.sleep(LEASE / 4)
        _until(worker.memory.live, "the worker never registered again")
        pages.resume.set()
        _join_warming()  # the stalled page is offered (refused, intact), then warming stops
        check(skip, worker.accepts(old))
    finally:
        pages.resume.set()
        gated.gate.set()
        worker.stop()


def _join_warming() -> None:
    for thread in threading.enumerate():
        if thread.name == "tenantauth-memory-warm":
            thread.join(WAIT)
            assert not thread.is_alive(), "warming did not end"
