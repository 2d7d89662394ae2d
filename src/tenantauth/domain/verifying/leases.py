"""Leases and acknowledged invalidation: the listener (one thread per worker) and the
writer's wait (docs/design.md, "Verifying from memory: leases and acknowledged invalidation").

The listener is the only thread that renews the worker's lease, and it renews only after
applying every invalidation it has read; so a listener that dies, blocks or is stopped stops
renewing, and its worker stops trusting memory within one lease. A writer, after its change is
committed and sealed, publishes an invalidation and returns only when every live lease has
acknowledged it or expired, then waits out a registry younger than one lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable

from tenantauth.domain.models import AckStatus, Publication, Registration
from tenantauth.domain.ports import LeaseRegistry, Storage
from tenantauth.domain.telemetry import NULL_TELEMETRY, RegisterReason, Telemetry, WaitOutcome
from tenantauth.domain.verifying.memory import VerifyMemory
from tenantauth.errors import (
    CacheUnavailableError,
    StorageUnavailableError,
    UnconfirmedChangeError,
)

log = logging.getLogger(__name__)
#: How long the listener waits after a failed call before trying again.
RETRY_SECONDS = 0.05
#: The writer polls the acks this often (the protocol's "one poll") once the wake-up
#: (``LeaseRegistry.wait_acknowledged``) has come or timed out.
POLL_SECONDS = 0.001
#: Listeners running in this process, so that a worker leaving stops them (``stop_all``).
_STARTED: weakref.WeakSet[LeaseListener] = weakref.WeakSet()


def stop_all() -> None:
    """Stop every listener of this process (a worker exiting: gunicorn's ``worker_exit``):
    each stops trusting its memory and leaves the registry, so no change waits for it."""
    for listener in list(_STARTED):
        listener.stop()


class LeaseListener:
    """Keeps one worker's lease and applies invalidations to its memory, on a thread of its
    own (started lazily in the process that verifies: ``ensure_started``)."""

    def __init__(
        self,
        registry: LeaseRegistry,
        memory: VerifyMemory,
        declarations: Storage,
        *,
        lease_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
        telemetry: Telemetry = NULL_TELEMETRY,
    ) -> None:
        """Wire the listener; nothing runs until ``ensure_started`` or ``step``."""
        self._telemetry = telemetry
        self._reason: RegisterReason = "start"
        self._registry = registry
        self._memory = memory
        self._declarations = declarations
        self._lease = lease_seconds
        self._monotonic = monotonic
        self._registration: Registration | None = None
        self._cursor = "0-0"
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()
        self._stop = threading.Event()
        self._declared = False
        self.worker_id = ""

    def ensure_started(self) -> None:
        """Start the listener thread in this process if it is not running (cheap to call on
        every miss: a forked worker, or one whose thread died, starts a new one)."""
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._start_lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._registration = None
            self._reason = "start"
            self._stop.clear()
            self.worker_id = f"{socket.gethostname()}:{self._pid}:{secrets.token_hex(4)}"
            self._thread = threading.Thread(
                target=self._run, name="tenantauth-lease-listener", daemon=True
            )
            self._thread.start()
            _STARTED.add(self)

    def stop(self) -> None:
        """Stop trusting memory, leave the registry (writers stop waiting for this worker),
        and end the thread. Safe to call when never started."""
        self._stop.set()
        self._memory.revoke()
        if self._registration is not None and self._pid == os.getpid():
            try:
                self._registry.deregister(self.worker_id)
            except CacheUnavailableError:
                log.info("could not leave the lease registry; writers wait out the lease")
        self._registration = None

    def step(self) -> None:
        """One turn of the loop: register if needed, else read the stream once, apply what
        arrived and renew. Raises ``CacheUnavailableError`` (the loop retries)."""
        if self._registration is None:
            self._register()
            return
        entries, cursor = self._registry.read(self._cursor, self._lease / 4)
        if self._stop.is_set():  # stopped while reading: the worker has left the registry
            return
        skip = self._memory.skip
        if "ack_after_drop" in skip and entries:  # tests only: acknowledge, then drop
            self._renew(entries[-1].seq)
        for entry in entries:
            if not self._memory.apply(entry.seq, entry.tenant_id):
                log.info("invalidation stream gap at seq %d; registering again", entry.seq)
                self._registration = None
                self._reason = "gap"
                return
        self._cursor = cursor
        self._renew(self._memory.applied)

    def _register(self) -> None:
        if not self._declared:
            # Durable before any memory is trusted: from here on writers publish and wait.
            self._declarations.declare_memory()
            self._declared = True
        self._memory.revoke()  # untrusted and empty before the script runs (race 3)
        sent_at = self._monotonic()
        registration = self._registry.register(self.worker_id)
        self._memory.registered(registration.seq, sent_at)
        self._telemetry.lease_registered(self._reason)
        self._registration = registration
        self._cursor = registration.cursor

    def _renew(self, applied: int) -> None:
        registration = self._registration
        if registration is None:  # stopped meanwhile (``stop`` ran on another thread)
            return
        sent_at = self._monotonic()
        if self._registry.renew(self.worker_id, registration.incarnation, applied):
            self._memory.renewed(sent_at)
        else:
            self._memory.expire()
            self._registration = None
            self._reason = "refused"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except CacheUnavailableError:
                self._stop.wait(RETRY_SECONDS)
            except Exception:  # a bug must not end the thread silently: log, keep going
                log.exception("lease listener failed; retrying")
                self._stop.wait(RETRY_SECONDS)


class Invalidator:
    """The writer's side: publish a change's invalidation and wait for the acknowledgements
    (or the expiry) of every live lease, then for a young registry to age."""

    def __init__(
        self,
        registry: LeaseRegistry | None,
        declarations: Storage,
        *,
        lease_seconds: float,
        skip: frozenset[str] = frozenset(),
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        telemetry: Telemetry = NULL_TELEMETRY,
    ) -> None:
        """``registry`` None (no shared cache: embedded mode) makes ``invalidate`` a no-op."""
        self._telemetry = telemetry
        self._registry = registry
        self._declarations = declarations
        self._lease = lease_seconds
        self._skip = skip
        self._monotonic = monotonic
        self._sleep = sleep
        self._in_use = False

    def invalidate(self, tenant_id: str) -> None:
        """Return once no worker can answer from state of ``tenant_id`` older than the change
        just committed and sealed. At most one lease (plus polls) whatever workers do.

        Raises ``UnconfirmedChangeError`` if the registry cannot be reached or the wait
        overran (the change is committed: a repeat confirms it)."""
        if self._registry is None:
            return
        started = self._monotonic()
        try:
            if not self._memory_in_use():
                return
            publication = self._publish(tenant_id)
            status = self._await_acks(publication)
        except (CacheUnavailableError, StorageUnavailableError, UnconfirmedChangeError) as exc:
            self._telemetry.invalidation_wait(self._monotonic() - started, "unconfirmed")
            raise _unconfirmed() from exc
        settle = status.settle_seconds > 0 and "registry_age_wait" not in self._skip
        if settle:
            self._sleep(status.settle_seconds)
        outcome: WaitOutcome = "settled" if settle else "acknowledged"
        self._telemetry.invalidation_wait(self._monotonic() - started, outcome)

    def _publish(self, tenant_id: str) -> Publication:
        """Publish, once more on a fresh connection if the first try fails (a reply lost to
        a timeout: publishing twice only makes workers drop the tenant twice)."""
        assert self._registry is not None  # noqa: S101 - checked by invalidate
        try:
            return self._registry.publish(tenant_id)
        except CacheUnavailableError:
            return self._registry.publish(tenant_id)

    def _await_acks(self, publication: Publication) -> AckStatus:
        """Wait for word of the last acknowledgement (at most one lease), then poll until no
        live lease is pending. A poll that fails (a timeout under load) is only a poll that
        did not answer: polling goes on, and only a successful one ends the wait. Raises
        ``UnconfirmedChangeError`` past three leases, ``CacheUnavailableError`` if the
        registry stayed unreachable that long."""
        assert self._registry is not None  # noqa: S101 - checked by invalidate
        give_up = self._monotonic() + 3 * self._lease
        if publication.awaited > 0 and "ack_wait" not in self._skip:  # part of that step
            # One blocking read instead of a poll every millisecond: under load each poll is
            # a wake-up that waits for a CPU (docs/design.md, "Woken acknowledgements").
            # Within one lease every lease counted has acknowledged or expired; a lease
            # that expired sends no word, so the polls below decide, as before. A failed
            # wait is only a wake-up that did not come: the polls meet the outage.
            with contextlib.suppress(CacheUnavailableError):
                self._registry.wait_acknowledged(publication, self._lease)
        while True:
            try:
                status = self._registry.acks(publication)
            except CacheUnavailableError:
                if self._monotonic() > give_up:
                    raise
            else:
                if status.pending <= 0 or "ack_wait" in self._skip:
                    return status
            if self._monotonic() > give_up:  # a bug or a clock far off: never return early
                raise _unconfirmed()
            self._sleep(POLL_SECONDS)

    def _memory_in_use(self) -> bool:
        """Whether any worker ever verified from memory (durable; once true, always)."""
        if not self._in_use:
            self._in_use = self._declarations.memory_declared()
        return self._in_use


def _unconfirmed() -> UnconfirmedChangeError:
    return UnconfirmedChangeError(
        "The change is committed, but not every verifier could be told yet; some may still "
        "accept what it revoked for a moment. Repeat the same request to confirm it."
    )
