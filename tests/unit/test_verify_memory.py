"""VerifyMemory's rules one by one, on a fake monotonic clock (docs/design.md, "Verifying
from memory"; the races with real Redis are tests/contract/test_memory_race.py)."""

from __future__ import annotations

import os

import pytest

from tenantauth.domain.models import KeyRecord, TenantSnapshot, TenantStatus
from tenantauth.domain.verifying import memory as memory_module
from tenantauth.domain.verifying.memory import PROTOCOL_STEPS, FillBudget, VerifyMemory

LEASE = 2.0


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        """Start at 100 s."""
        self.now = 100.0

    def __call__(self) -> float:
        """Return the time."""
        return self.now


def snapshot(tenant_id: str = "acme", generation: int = 1) -> TenantSnapshot:
    """A tenant's snapshot at ``generation``."""
    return TenantSnapshot(KeyRecord(tenant_id, generation, TenantStatus.ACTIVE, None, 1))


def registered(clock: Clock, **kwargs: object) -> VerifyMemory:
    """Memory registered at seq 0 with a lease from now."""
    memory = VerifyMemory(LEASE, monotonic=clock, **kwargs)  # type: ignore[arg-type]
    memory.revoke()
    memory.registered(0, clock.now)
    return memory


def test_untrusted_until_registered() -> None:
    """A new memory holds nothing and takes nothing: it has no lease."""
    clock = Clock()
    memory = VerifyMemory(LEASE, monotonic=clock)
    assert not memory.live()
    assert not memory.offer(memory.note(), snapshot())
    assert memory.get("acme") is None


def test_used_only_before_the_deadline_which_allows_for_drift() -> None:
    """The lease runs from the time *before* the request was sent, shortened by 1 %."""
    clock = Clock()
    memory = registered(clock)
    assert memory.offer(memory.note(), snapshot())
    clock.now += LEASE * 0.985
    assert memory.get("acme") is not None
    clock.now += LEASE * 0.01  # past L(1 - 1 %) although within L
    assert memory.get("acme") is None
    assert not memory.offer(memory.note(), snapshot())
    memory.renewed(clock.now)
    assert memory.get("acme") is not None  # a renewal extends it


def test_an_invalidation_raises_the_floor_and_drops_the_tenant() -> None:
    """A read noted before invalidation 1 cannot insert after it; one noted after can."""
    clock = Clock()
    memory = registered(clock)
    before = memory.note()
    assert memory.offer(before, snapshot())
    assert memory.apply(1, "acme")
    assert memory.get("acme") is None
    assert not memory.offer(before, snapshot())  # the stale fill
    assert memory.offer(memory.note(), snapshot(generation=2))
    assert memory.get("acme") == snapshot(generation=2)


def test_other_tenants_invalidations_do_not_refuse_a_fill() -> None:
    """Floors are per tenant."""
    clock = Clock()
    memory = registered(clock)
    ticket = memory.note()
    assert memory.apply(1, "other")
    assert memory.offer(ticket, snapshot())


def test_a_gap_is_reported_and_changes_nothing() -> None:
    """seq 2 after 0 means entry 1 was lost: the caller must register again."""
    clock = Clock()
    memory = registered(clock)
    assert memory.offer(memory.note(), snapshot())
    assert not memory.apply(2, "other")
    assert memory.applied == 0


def test_registration_forgets_everything_and_changes_the_epoch() -> None:
    """A read noted under one registration cannot insert under the next one."""
    clock = Clock()
    memory = registered(clock)
    assert memory.offer(memory.note(), snapshot())
    assert memory.apply(1, "acme")
    ticket = memory.note()
    memory.revoke()
    assert not memory.live() and memory.size() == 0
    memory.registered(5, clock.now)
    assert memory.applied == 5
    assert not memory.offer(ticket, snapshot())  # floor cleared, but the epoch moved on


def test_expire_stops_trust_at_once() -> None:
    """A refused renewal: nothing is used from then on."""
    clock = Clock()
    memory = registered(clock)
    assert memory.offer(memory.note(), snapshot())
    memory.expire()
    assert memory.get("acme") is None


def test_capacity_drops_the_oldest_insert() -> None:
    """FIFO past the bound."""
    clock = Clock()
    memory = registered(clock, capacity=2)
    for name in ("a1", "a2", "a3"):
        assert memory.offer(memory.note(), snapshot(name))
    assert memory.get("a1") is None
    assert memory.get("a2") is not None and memory.get("a3") is not None


def test_floors_fold_into_one_past_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_FLOORS, every read noted before the fold is refused for every tenant."""
    monkeypatch.setattr(memory_module, "MAX_FLOORS", 3)
    clock = Clock()
    memory = registered(clock)
    old = memory.note()
    for seq, name in enumerate(("t1", "t2", "t3", "t4"), start=1):
        assert memory.apply(seq, name)
    assert not memory.offer(old, snapshot("untouched"))
    assert memory.offer(memory.note(), snapshot("untouched"))


def test_unknown_skips_are_refused() -> None:
    """A misspelt test switch must not silently test nothing."""
    with pytest.raises(ValueError, match="unknown protocol steps"):
        VerifyMemory(LEASE, skip={"flor"})
    assert VerifyMemory(LEASE, skip=PROTOCOL_STEPS).skip == PROTOCOL_STEPS


def test_a_forked_child_does_not_trust_what_it_inherited() -> None:
    """The child has no listener: its copy is revoked at fork."""
    clock = Clock()
    memory = registered(clock)
    assert memory.offer(memory.note(), snapshot())
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what it sees, then leave at once
        os.write(write, b"1" if memory.get("acme") is None and not memory.live() else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert memory.get("acme") is not None  # the parent keeps its own


def test_the_fill_budget_allows_its_rate_and_refills_with_time() -> None:
    """50 loads a second: a burst of 50, then none, then 6 after an eighth of a second."""
    clock = Clock()
    budget = FillBudget(50, monotonic=clock)
    assert sum(budget.take() for _ in range(80)) == 50
    clock.now += 0.125
    assert sum(budget.take() for _ in range(80)) == 6
    clock.now += 60
    assert sum(budget.take() for _ in range(80)) == 50  # never more than one second's worth
