"""Single-flight for cache misses: concurrent misses of one tenant share one storage read.

The rule that keeps this safe for revocation (docs/design.md, "Single-flight"): a request may
only join a read that has **not started yet**. A read that started before a rotation committed
may return the old secret; a request that arrived after the rotation returned must not be
answered with it. So each key has at most one *running* flight and at most one *waiting*
flight; newcomers join the waiting one, which starts when the running one ends. Every joiner
therefore gets a read that began after it arrived.

A stampede costs at most two reads per key per process (one running, one waiting), and the
waiting leader first re-checks the cache (``waited=True``), which the running read has usually
just filled, so in practice one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from tenantauth.errors import StorageUnavailableError

T = TypeVar("T")


class _Flight(Generic[T]):
    """One shared read: its outcome, and an event set when it is known."""

    __slots__ = ("done", "error", "result")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None

    def finish(self, result: T | None, error: BaseException | None) -> None:
        self.result, self.error = result, error
        self.done.set()

    def outcome(self, timeout: float) -> T:
        """Return the read's result, or raise its error; ``StorageUnavailableError`` if it
        does not end within ``timeout`` seconds."""
        if not self.done.wait(timeout):
            raise StorageUnavailableError("timed out waiting for a shared storage read")
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]  # set whenever error is None


class SingleFlight(Generic[T]):
    """Coalesces concurrent loads per key, joining only loads that have not started."""

    def __init__(self, timeout: float) -> None:
        """``timeout``: how long one load may take (seconds); a caller waits at most twice
        that for loads it did not start (the one ahead of its flight, then its own)."""
        self._timeout = timeout
        self._lock = threading.Lock()
        self._waiting: dict[str, _Flight[T]] = {}
        self._running: dict[str, _Flight[T]] = {}

    def run(self, key: str, load: Callable[[bool], T]) -> T:
        """Return the result of a ``load`` of ``key`` that started after this call began.

        ``load(waited)`` is called by at most one of the coalesced callers; ``waited`` is True
        when it had to wait for an earlier load of the key (so the cache is probably warm
        again). Re-raises the load's error for every caller it served; raises
        ``StorageUnavailableError`` when waiting exceeds the timeout.
        """
        with self._lock:
            flight = self._waiting.get(key)
            leading = flight is None
            if flight is None:
                flight = self._waiting[key] = _Flight()
        if not leading:
            # A joiner may wait for the read ahead of its flight and then for its own read,
            # each bounded by the storage timeouts: twice the timeout, not once.
            return flight.outcome(2 * self._timeout)
        return self._lead(key, flight, load)

    def _lead(self, key: str, flight: _Flight[T], load: Callable[[bool], T]) -> T:
        deadline = time.monotonic() + self._timeout
        waited = False
        while True:
            with self._lock:
                ahead = self._running.get(key)
                if ahead is None:
                    # Closing the flight: from now on newcomers start the next one.
                    del self._waiting[key]
                    self._running[key] = flight
                    break
            waited = True
            if not ahead.done.wait(max(0.0, deadline - time.monotonic())):
                self._abandon(key, flight)
        try:
            result = load(waited)
        except BaseException as exc:
            self._land(key, flight, None, exc)
            raise
        self._land(key, flight, result, None)
        return result

    def _abandon(self, key: str, flight: _Flight[T]) -> None:
        """Fail a flight that never started because the one ahead of it hung; raises."""
        error = StorageUnavailableError("timed out waiting for a shared storage read")
        with self._lock:
            del self._waiting[key]
        flight.finish(None, error)
        raise error

    def _land(
        self, key: str, flight: _Flight[T], result: T | None, error: BaseException | None
    ) -> None:
        with self._lock:
            del self._running[key]
        flight.finish(result, error)
