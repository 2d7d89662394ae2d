"""A worker's memory of tenant state, trusted only within its lease (docs/design.md,
"Verifying from memory: leases and acknowledged invalidation").

``VerifyMemory`` is the worker-local half of the protocol: the map of tenant snapshots, the
per-tenant ``floor`` (the last invalidation applied for that tenant), the cursor ``applied``,
the *registration epoch* and the ``deadline`` past which nothing here may be used. The
listener (domain/verifying/leases.py) feeds it invalidations and renewals; verification reads it and
offers it what it read elsewhere. Every rule of the Promela model (model/leases.pml) that
concerns one worker lives here, each under the lock where the model makes it one step.

Test-only *skips* remove single steps, so the tests can show each one is needed
(``PROTOCOL_STEPS``); production code never passes any.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable, Collection
from dataclasses import dataclass

from tenantauth.domain.models import TenantSnapshot

#: The protocol's removable steps (tests only): each name disables one step.
PROTOCOL_STEPS = frozenset(
    {
        "floor",  # listener raises floor[t]; inserts check it
        "deadline",  # memory is used, and filled, only before the lease deadline
        "gap",  # a seq that does not follow `applied` forces a new registration
        "revoke_on_register",  # registering first stops trusting and clears memory
        "epoch",  # an insert needs the registration epoch its read noted
        "ack_after_drop",  # the listener acknowledges only after dropping
        "ack_wait",  # the writer waits for every live lease's ack
        "registry_age_wait",  # the writer waits out a registry younger than one lease
    }
)
#: Clock rate difference we tolerate between a worker and Redis (NTP keeps it at ppm).
CLOCK_DRIFT = 0.01
#: Past this many floors, they are folded into one (every older read is then refused).
MAX_FLOORS = 100_000


@dataclass(frozen=True, slots=True)
class MemoryTicket:
    """What a verification notes *before* the read it may offer to memory."""

    applied: int
    epoch: int


class VerifyMemory:
    """Tenant snapshots held by one worker process, used only while its lease is live.

    Thread-safe: request threads call ``get``, ``note`` and ``offer``; the listener thread
    calls ``revoke``, ``registered``, ``apply``, ``renewed`` and ``expire``.
    """

    def __init__(
        self,
        lease_seconds: float,
        *,
        capacity: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
        skip: Collection[str] = (),
    ) -> None:
        """Start empty and untrusted (no lease). ``capacity`` bounds the tenants held: past
        it the oldest insert is dropped (FIFO: cheaper than LRU on every hit, and any drop is
        safe). ``skip`` names protocol steps to leave out (tests only)."""
        unknown = set(skip) - PROTOCOL_STEPS
        if unknown:
            raise ValueError(f"unknown protocol steps: {sorted(unknown)}")
        self._trusted_for = lease_seconds * (1 - CLOCK_DRIFT)
        self._capacity = capacity
        self._monotonic = monotonic
        self.skip = frozenset(skip)
        self._lock = threading.Lock()
        self._entries: dict[str, TenantSnapshot] = {}
        self._floors: dict[str, int] = {}
        self._folded_floor = 0  # the floor of every tenant whose own floor was folded away
        self.applied = 0
        self.epoch = 0
        self._deadline = 0.0
        # A forked child inherits the parent's map but not its listener: it must not trust it.
        # (A weak reference: a process that builds many apps, as the tests do, keeps none.)
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _revoke_if_alive(ref))

    def get(self, tenant_id: str) -> TenantSnapshot | None:
        """Return the tenant's snapshot if held and the lease is live, else None."""
        snapshot = self._entries.get(tenant_id)
        # The deadline is read after the entry: the check is as late as it can be.
        if snapshot is not None and (self._monotonic() < self._deadline or "deadline" in self.skip):
            return snapshot
        return None

    def live(self) -> bool:
        """Whether the lease is live (memory may be used and filled)."""
        return self._monotonic() < self._deadline

    def note(self) -> MemoryTicket:
        """Note the cursor and epoch; call before the read whose result may be offered."""
        with self._lock:
            return MemoryTicket(self.applied, self.epoch)

    def offer(self, ticket: MemoryTicket, snapshot: TenantSnapshot) -> bool:
        """Insert ``snapshot`` if no invalidation of its tenant was applied since ``ticket``
        was noted, the registration is the same and the lease is live: the fenced fill of
        memory (race 5). Returns whether it was inserted."""
        tenant_id = snapshot.record.tenant_id
        with self._lock:  # one step against the listener (model: SPLIT_INSERT)
            if "deadline" not in self.skip and self._monotonic() >= self._deadline:
                return False
            if "floor" not in self.skip and self._floor(tenant_id) > ticket.applied:
                return False
            if "epoch" not in self.skip and self.epoch != ticket.epoch:
                return False
            if tenant_id not in self._entries and len(self._entries) >= self._capacity:
                del self._entries[next(iter(self._entries))]
            self._entries[tenant_id] = snapshot
            return True

    def revoke(self) -> None:
        """Stop trusting memory and forget it (before registering, after a fork): one step,
        so nothing is used or inserted while the registration is in flight (race 3)."""
        with self._lock:
            self._deadline = 0.0
            if "revoke_on_register" not in self.skip:
                self._entries.clear()
                self._floors.clear()
                self._folded_floor = 0
            self.epoch += 1

    def registered(self, seq: int, sent_at: float) -> None:
        """Apply a registration's reply: the stream's seq then, and a lease measured from
        ``sent_at`` (the monotonic time before the request was sent)."""
        with self._lock:
            self.applied = seq
            self.epoch += 1
            self._deadline = sent_at + self._trusted_for

    def apply(self, seq: int, tenant_id: str) -> bool:
        """Apply invalidation ``seq`` of ``tenant_id``: raise its floor, then drop it.

        Returns False on a gap (``seq`` does not follow ``applied``: entries were trimmed or
        lost, or Redis changed); the caller must register again."""
        with self._lock:
            if seq != self.applied + 1 and "gap" not in self.skip:
                return False
            if "floor" not in self.skip:  # floor before drop (model: DROP_BEFORE_FLOOR)
                self._raise_floor(tenant_id, seq)
            self._entries.pop(tenant_id, None)
            self.applied = max(self.applied, seq)
            return True

    def renewed(self, sent_at: float) -> None:
        """A renewal sent at ``sent_at`` (monotonic) was accepted: the lease runs from then."""
        with self._lock:
            self._deadline = sent_at + self._trusted_for

    def expire(self) -> None:
        """Stop trusting memory now (a renewal was refused); a registration follows."""
        with self._lock:
            self._deadline = 0.0

    def size(self) -> int:
        """Return the number of tenants held."""
        return len(self._entries)

    @property
    def capacity(self) -> int:
        """The most tenants held at once."""
        return self._capacity

    def _floor(self, tenant_id: str) -> int:
        return self._floors.get(tenant_id, self._folded_floor)

    def _raise_floor(self, tenant_id: str, seq: int) -> None:
        if len(self._floors) >= MAX_FLOORS:
            # Fold every floor into one at the cursor: reads noted before it are refused for
            # every tenant, which only costs a few refused inserts.
            self._folded_floor = self.applied
            self._floors.clear()
        self._floors[tenant_id] = seq


class FillBudget:
    """How many tenants a worker may load whole for memory per second (a token bucket).

    Filling memory costs a database read per tenant and worker; a working set far larger than
    what a worker has seen (100,000 tenants picked at random) would otherwise turn each first
    sight into one, and slow every verification down (docs/performance-scale.md). Past the
    budget a verification just takes the exact path, which it does anyway for its answer.
    """

    def __init__(
        self, per_second: float, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        """A full bucket of ``per_second`` tokens, refilled continuously."""
        self._rate = per_second
        self._tokens = per_second
        self._monotonic = monotonic
        self._at = monotonic()
        self._lock = threading.Lock()

    def take(self) -> bool:
        """Take one token; False if there is none now."""
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._at) * self._rate)
            self._at = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True


def _revoke_if_alive(ref: weakref.ref[VerifyMemory]) -> None:
    memory = ref()
    if memory is not None:
        memory.revoke()
