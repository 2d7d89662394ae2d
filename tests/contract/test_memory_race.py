"""Verifying from memory: the races of docs/design.md ("Verifying from memory"), on real
PostgreSQL and Redis, each with the protocol intact and with the one step that defeats it
removed (``MemoryPolicy.skip``). Intact, no verification that starts after a change returned
accepts what the change revoked; without the step, the same schedule accepts it. So every
step is shown necessary by a test that fails when it is missing.

A "worker" here is a KeyResolver with its own memory and listener thread, as one gunicorn
worker has; the writer is the use case (``tenants.rotate_tenant``) with its Invalidator.
Schedules are forced with wrappers around our own adapters that stop a party at the
dangerous point until released.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
import redis

from tenantauth.cache.leases import RedisLeases
from tenantauth.cache.leases_lua import STREAM
from tenantauth.domain import revocations, tenants
from tenantauth.domain.models import Invalidation
from tenantauth.domain.policy import MemoryPolicy
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import TokenRequest, TokenVerifier, issue_token
from tenantauth.domain.verifying.keys import KeyResolver
from tenantauth.domain.verifying.leases import Invalidator, LeaseListener
from tenantauth.domain.verifying.memory import VerifyMemory
from tenantauth.errors import InvalidTokenError
from tests.contract.conftest import MEMORY_LEASE
from tests.contract.test_fence_race import in_thread
from tests.support import flush_claimed_db

LEASE = MEMORY_LEASE
WAIT = 10.0


class GatedLeases:
    """RedisLeases whose stream reads are withheld from the listener while ``closed``: it
    stops applying and renewing, as a stalled or stopped listener does."""

    def __init__(self, inner: RedisLeases) -> None:
        """Wrap ``inner``; the gate starts open."""
        self.inner = inner
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def read(self, cursor: str, block_seconds: float) -> tuple[list[Invalidation], str]:
        """Read, then hold the result until the gate opens."""
        found = self.inner.read(cursor, block_seconds)
        if not self.gate.is_set():
            self.waiting.set()
            assert self.gate.wait(WAIT)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class PausingLoads:
    """Storage whose next whole-tenant load (the memory fill) stops after reading."""

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``; nothing pauses until ``arm``."""
        self.inner = inner
        self.armed = False
        self.paused = threading.Event()
        self.resume = threading.Event()

    def load_key_record(self, tenant_id: str) -> Any:
        """Read; when armed, wait to be released before handing back what was read."""
        found = self.inner.load_key_record(tenant_id)
        if self.armed:
            self.armed = False
            self.paused.set()
            assert self.resume.wait(WAIT)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class SlowDropMemory(VerifyMemory):
    """Memory whose listener stops inside ``apply`` (before dropping) while ``hold`` is set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """As VerifyMemory."""
        super().__init__(*args, **kwargs)
        self.hold = threading.Event()
        self.held = threading.Event()
        self.release = threading.Event()

    def apply(self, seq: int, tenant_id: str) -> bool:
        """Wait to be released first when ``hold`` is set."""
        if self.hold.is_set():
            self.held.set()
            assert self.release.wait(WAIT)
        return super().apply(seq, tenant_id)


class Worker:
    """One verifying worker: its memory, its listener thread, its resolver."""

    def __init__(
        self,
        svc: Services,
        leases: Any,
        skip: frozenset[str],
        *,
        storage: Any = None,
        memory_class: type[VerifyMemory] = VerifyMemory,
        max_revocations: int = 10_000,
        warm: bool = False,
        retain: Any = None,
        **policy_fields: Any,
    ) -> None:
        """Build it; the listener starts at the first verification. Memory is filled one
        tenant at a time unless ``warm`` (tests/contract/test_memory_warming.py), so that
        each schedule here knows which read fills it."""
        policy = MemoryPolicy(
            lease_seconds=LEASE,
            skip=skip,
            max_revocations=max_revocations,
            warm=warm,
            **policy_fields,
        )
        self.memory = memory_class(LEASE, skip=skip)
        self.listener = LeaseListener(leases, self.memory, svc.storage, lease_seconds=LEASE)
        keys = KeyResolver(
            storage or svc.storage,
            svc.cache,
            svc.keyring,
            svc.caching,
            tokens=svc.tokens,
            memory=(self.memory, self.listener, policy),
            retain=retain,
        )
        self.verifier = TokenVerifier(keys, svc.tokens, svc.clock)

    def accepts(self, token: str) -> bool:
        """Whether this worker accepts ``token`` now."""
        try:
            self.verifier.verify(token)
        except InvalidTokenError:
            return False
        return True

    def hold(self, tenant_id: str, token: str) -> None:
        """Verify until the tenant is held in memory (the lease must be live first), then
        let the registry grow one lease old, so that no writer's registry-age wait hides
        what the test is about."""
        deadline = time.monotonic() + WAIT
        while self.memory.get(tenant_id) is None:
            assert time.monotonic() < deadline, "memory never took the tenant"
            assert self.accepts(token)
            time.sleep(0.01)
        time.sleep(LEASE)
        assert self.memory.get(tenant_id) is not None

    def stop(self) -> None:
        """Leave the registry and end the listener."""
        self.listener.stop()


def writer(svc: Services, leases: Any, skip: frozenset[str]) -> Services:
    """``svc`` whose changes publish to ``leases`` and wait as the protocol says."""
    invalidator = Invalidator(leases, svc.storage, lease_seconds=LEASE, skip=skip)
    return replace(svc, invalidator=invalidator)


def mint(svc: Services, tenant_id: str = "acme") -> str:
    """Issue a token of ``tenant_id``."""
    request = TokenRequest(tenant_id, "user-1")
    return issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token


def steps(name: str) -> list[Any]:
    """Parameters: the protocol intact, then without step ``name``."""
    return [
        pytest.param(frozenset(), id="intact"),
        pytest.param(frozenset({name}), id=f"without-{name}"),
    ]


def check(skip: frozenset[str], stale_accepted: bool) -> None:
    """Intact, the old token must be rejected; without the step, this schedule accepts it."""
    if skip:
        assert stale_accepted, f"removing {sorted(skip)} went unnoticed by this schedule"
    else:
        assert not stale_accepted, "a verification after the change accepted a revoked token"


def test_a_held_tenant_is_answered_from_memory_and_rotation_revokes_it(
    pg_services: Services, leases: Any
) -> None:
    """The plain case, with the listener running: hold, rotate, the old token is dead on
    the worker the moment the rotation returns; the new one is accepted (and held again)."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    worker = Worker(svc, leases, frozenset())
    try:
        worker.hold("acme", old)
        tenants.rotate_tenant(svc, "acme")
        assert not worker.accepts(old)
        new = mint(svc)
        worker.hold("acme", new)
        assert not worker.accepts(old)
    finally:
        worker.stop()


@pytest.mark.parametrize("skip", steps("ack_wait"))
def test_writer_waits_for_a_stalled_listener(
    pg_services: Services, leases: Any, skip: frozenset[str]
) -> None:
    """Race 8: the listener stalls; the change must wait out its lease, not return."""
    svc = writer(pg_services, leases, skip)
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip)
    try:
        worker.hold("acme", old)
        gated.gate.clear()
        tenants.rotate_tenant(svc, "acme")
        check(skip, worker.accepts(old))
    finally:
        gated.gate.set()
        worker.stop()


@pytest.mark.parametrize("skip", steps("deadline"))
def test_a_worker_past_its_deadline_stops_using_memory(
    pg_services: Services, leases: Any, skip: frozenset[str]
) -> None:
    """Race 2: the writer waited the lease out; the worker must not use memory past it."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip)
    try:
        worker.hold("acme", old)
        gated.gate.clear()
        tenants.rotate_tenant(svc, "acme")  # returns once the stalled lease expired
        check(skip, worker.accepts(old))
    finally:
        gated.gate.set()
        worker.stop()


@pytest.mark.parametrize("skip", steps("floor"))
def test_a_fill_in_flight_across_an_invalidation_is_refused(
    pg_services: Services, leases: Any, skip: frozenset[str]
) -> None:
    """Race 5: a memory fill reads the old row, the rotation is applied and acknowledged
    and returns, then the fill offers the old row: refused by the floor."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    assert svc.verifier.verify(old)  # the tenant is warm in Redis: the miss is memory's only
    loads = PausingLoads(svc.storage)
    worker = Worker(svc, leases, skip, storage=loads)
    try:
        deadline = time.monotonic() + WAIT
        while not worker.memory.live():  # the first verification starts the listener
            worker.accepts(old)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert worker.memory.get("acme") is None  # nothing was filled before the lease
        loads.armed = True
        thread, _ = in_thread(lambda: worker.accepts(old))
        assert loads.paused.wait(WAIT)  # the fill holds the pre-rotation row
        tenants.rotate_tenant(svc, "acme")  # applied and acknowledged by the listener
        loads.resume.set()
        thread.join(WAIT)
        check(skip, worker.accepts(old))
    finally:
        loads.resume.set()
        worker.stop()


@pytest.mark.parametrize("skip", steps("ack_after_drop"))
def test_the_ack_follows_the_drop(pg_services: Services, leases: Any, skip: frozenset[str]) -> None:
    """The listener must drop before it acknowledges: otherwise the writer may return while
    the old state is still held."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    worker = Worker(svc, leases, skip, memory_class=SlowDropMemory)
    memory = worker.memory
    assert isinstance(memory, SlowDropMemory)
    try:
        worker.hold("acme", old)
        memory.hold.set()
        thread, out = in_thread(lambda: tenants.rotate_tenant(svc, "acme"))
        assert memory.held.wait(WAIT)
        thread.join(LEASE / 4)  # intact, the writer is still waiting for the ack
        stale = (not thread.is_alive()) and worker.accepts(old)
        memory.release.set()
        thread.join(WAIT)
        assert not isinstance(out[0], Exception)
        check(skip, stale)
    finally:
        memory.release.set()
        worker.stop()


@pytest.mark.parametrize("skip", steps("gap"))
def test_a_lost_invalidation_is_noticed_as_a_gap(
    pg_services: Services, leases: Any, redis_url: str, skip: frozenset[str]
) -> None:
    """Race 6: the rotation's stream entry is lost, a later change of another tenant
    arrives; acknowledging that one must not acknowledge the lost one."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    tenants.create_tenant(svc, "other", "Other")
    old = mint(svc)
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip)
    client = redis.Redis.from_url(redis_url)
    try:
        worker.hold("acme", old)
        gated.gate.clear()
        assert gated.waiting.wait(WAIT)  # the listener holds what it read: none of ours
        thread, out = in_thread(lambda: tenants.rotate_tenant(svc, "acme"))
        deadline = time.monotonic() + WAIT
        while not client.xlen(STREAM) or _last_tenant(client) != "acme":
            assert time.monotonic() < deadline
            time.sleep(0.001)
        client.xdel(STREAM, client.xrevrange(STREAM, count=1)[0][0])  # the entry is lost
        leases.publish("other")  # a later change, whose entry arrives
        gated.gate.set()
        thread.join(WAIT)
        assert not isinstance(out[0], Exception)
        check(skip, worker.accepts(old))
    finally:
        gated.gate.set()
        client.close()
        worker.stop()


def _last_tenant(client: redis.Redis) -> str:
    entries = client.xrevrange(STREAM, count=1)
    return entries[0][1][b"t"].decode() if entries else ""


@pytest.mark.parametrize("skip", steps("registry_age_wait"))
def test_a_lost_registry_is_waited_out(
    pg_services: Services, leases: Any, redis_url: str, skip: frozenset[str]
) -> None:
    """Race 7: Redis loses the registry (flush of the test's own DB); a change then finds
    no member to wait for, and must still wait one lease for workers registered before."""
    svc = writer(pg_services, leases, skip)
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip)
    client = redis.Redis.from_url(redis_url)
    try:
        worker.hold("acme", old)
        gated.gate.clear()
        flush_claimed_db(client)  # the registry, acks, stream and cache are gone
        tenants.rotate_tenant(svc, "acme")
        check(skip, worker.accepts(old))
    finally:
        gated.gate.set()
        client.close()
        worker.stop()


def _wait_live(worker: Worker) -> None:
    deadline = time.monotonic() + WAIT
    while not worker.memory.live():
        assert time.monotonic() < deadline, "the worker never registered again"
        time.sleep(0.005)


@pytest.mark.parametrize("skip", steps("epoch"))
def test_a_read_from_before_a_registration_is_not_inserted_after_it(
    pg_services: Services, leases: Any, skip: frozenset[str]
) -> None:
    """Race 3, the model check's counterexample: a fill reads the old row and stalls; the
    listener stalls too, its lease lapses, the change returns; the worker registers again
    (clearing floors); the stalled fill must not insert what it read under the old one."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    assert svc.verifier.verify(old)  # warm in Redis: the memory fill is the only load
    loads = PausingLoads(svc.storage)
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip, storage=loads)
    try:
        worker.accepts(old)  # starts the listener
        _wait_live(worker)
        time.sleep(LEASE)  # the registry grows one lease old
        loads.armed = True
        fill, _ = in_thread(lambda: worker.accepts(old))
        assert loads.paused.wait(WAIT)  # the fill noted its ticket and read the old row
        gated.gate.clear()
        assert gated.waiting.wait(WAIT)
        tenants.rotate_tenant(svc, "acme")  # waits out the stalled lease
        gated.gate.set()  # the listener applies, its renewal is refused, it registers
        time.sleep(LEASE / 4)
        _wait_live(worker)
        loads.resume.set()
        fill.join(WAIT)
        check(skip, worker.accepts(old))
    finally:
        loads.resume.set()
        gated.gate.set()
        worker.stop()


@pytest.mark.parametrize("skip", steps("revoke_on_register"))
def test_registering_again_forgets_what_was_held(
    pg_services: Services, leases: Any, redis_url: str, skip: frozenset[str]
) -> None:
    """A worker whose lease lapsed may have missed invalidations (here the entry is lost
    too); registering again must start from empty memory, not from what it held."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    gated = GatedLeases(leases)
    worker = Worker(svc, gated, skip)
    client = redis.Redis.from_url(redis_url)
    try:
        worker.hold("acme", old)
        gated.gate.clear()
        assert gated.waiting.wait(WAIT)  # the listener holds a read with nothing of ours
        tenants.rotate_tenant(svc, "acme")  # waits out the stalled lease
        client.xdel(STREAM, client.xrevrange(STREAM, count=1)[0][0])  # and the entry is lost
        gated.gate.set()  # renewal refused (lapsed): the worker registers again
        _wait_live(worker)
        check(skip, worker.accepts(old))
    finally:
        gated.gate.set()
        client.close()
        worker.stop()


class DyingLeases:
    """RedisLeases whose next stream read, once armed, kills the listener thread (SystemExit
    ends a thread silently: the way a listener dies that no ``except Exception`` catches)."""

    def __init__(self, inner: RedisLeases) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.armed = threading.Event()
        self.died = threading.Event()

    def read(self, cursor: str, block_seconds: float) -> tuple[list[Invalidation], str]:
        """Read; when armed, die instead of returning."""
        found = self.inner.read(cursor, block_seconds)
        if self.armed.is_set():
            self.armed.clear()
            self.died.set()
            raise SystemExit
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# The thread's death is the point: pytest reports any thread ending in an exception.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_listener_that_dies_is_waited_out_and_replaced(
    pg_services: Services, leases: Any
) -> None:
    """The listener thread dies without leaving the registry: the change waits out its lease
    (no renewal, no ack), the worker stops trusting memory at its deadline, and the next
    verification that finds memory untrusted starts a new listener."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    old = mint(svc)
    dying = DyingLeases(leases)
    worker = Worker(svc, dying, frozenset())
    try:
        worker.hold("acme", old)
        dying.armed.set()
        assert dying.died.wait(WAIT)
        started = time.monotonic()
        tenants.rotate_tenant(svc, "acme")
        assert time.monotonic() - started <= LEASE + 1.0  # the bound: one lease plus polls
        assert not worker.accepts(old)  # and this verification starts a new listener
        new = mint(svc)
        worker.hold("acme", new)
        assert not worker.accepts(old)
    finally:
        worker.stop()


class CountingLoads:
    """Storage that counts the whole-tenant loads (``load_key_record``)."""

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.loads = 0

    def load_key_record(self, tenant_id: str) -> Any:
        """Count, then read."""
        self.loads += 1
        return self.inner.load_key_record(tenant_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_tenant_with_too_many_revocations_is_not_held_nor_reloaded(
    pg_services: Services, leases: Any
) -> None:
    """Over ``max_revocations`` the tenant stays on the exact path, and memory does not read
    it whole again on each of its verifications."""
    svc = writer(pg_services, leases, frozenset())
    tenants.create_tenant(svc, "acme", "Acme")
    revocations.revoke_subject(svc, "acme", "someone")
    revocations.revoke_subject(svc, "acme", "someone-else")
    token = mint(svc)
    loads = CountingLoads(svc.storage)
    worker = Worker(svc, leases, frozenset(), storage=loads, max_revocations=1)
    try:
        deadline = time.monotonic() + WAIT
        while not worker.memory.live():
            assert worker.accepts(token)
            assert time.monotonic() < deadline
            time.sleep(0.01)
        before = loads.loads
        for _ in range(20):
            assert worker.accepts(token)
        assert worker.memory.get("acme") is None
        assert loads.loads - before <= 1
    finally:
        worker.stop()
