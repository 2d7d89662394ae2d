"""MemoryFailureLimiter: the FailureLimiter port in process memory (embedded mode, no Redis).

Same semantics as ``RedisFailureLimiter``: per key a count and an expiry, which is the end of
the counting window or — once the count reaches the threshold — the end of the lockout.
Counters live in one process: with several worker processes each counts on its own, so the
effective limit is multiplied by the number of workers (embedded mode runs one).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenantauth.domain.limits import LimitPolicy, locked_error, retry_after_seconds

#: Beyond this many keys the least recently updated are dropped, so a flood of distinct
#: usernames or addresses cannot exhaust memory (expired entries go first).
DEFAULT_MAX_KEYS = 100_000


@dataclass(slots=True)
class _Counter:
    failures: int
    expires_at: float


class MemoryFailureLimiter:
    """The FailureLimiter port (``tenantauth.domain.limits``) in a bounded, locked dict.

    Thread-safe (one lock; every operation is O(number of keys passed), amortised). The same
    keys and answers for known and unknown usernames: the limiter never looks anything up.
    Raises nothing but ``RateLimitedError`` from ``check``.
    """

    def __init__(
        self,
        policy: LimitPolicy,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        """Count with ``policy``; ``clock`` returns monotonic seconds (tests pass a fake)."""
        self._policy = policy
        self._clock = clock
        self._max_keys = max_keys
        self._lock = threading.Lock()
        # Ordered by last update, oldest first: the eviction order.
        self._counters: OrderedDict[str, _Counter] = OrderedDict()

    def check(self, keys: Sequence[str]) -> frozenset[str]:
        """See ``FailureLimiter.check``."""
        now = self._clock()
        longest = 0.0
        counted = set()
        with self._lock:
            for key in keys:
                counter = self._live(key, now)
                if counter is None:
                    continue
                counted.add(key)
                if counter.failures >= self._policy.threshold(key):
                    longest = max(longest, counter.expires_at - now)
        if longest > 0:
            raise locked_error(retry_after_seconds(longest))
        return frozenset(counted)

    def record_failure(self, keys: Sequence[str]) -> None:
        """See ``FailureLimiter.record_failure``."""
        now = self._clock()
        with self._lock:
            for key in keys:
                counter = self._live(key, now)
                if counter is None:
                    counter = _Counter(0, now + self._policy.window_seconds)
                    self._counters[key] = counter
                counter.failures += 1
                if counter.failures == self._policy.threshold(key):
                    # Set once: failures recorded while locked do not extend the lockout.
                    counter.expires_at = now + self._policy.lockout_seconds
                self._counters.move_to_end(key)
            self._evict(now)

    def reset(self, keys: Sequence[str]) -> None:
        """See ``FailureLimiter.reset``."""
        with self._lock:
            for key in keys:
                self._counters.pop(key, None)

    def __len__(self) -> int:
        """Return the number of keys held (expired ones included until evicted)."""
        return len(self._counters)

    def _live(self, key: str, now: float) -> _Counter | None:
        """Return the unexpired counter of ``key``, dropping an expired one. Hold the lock."""
        counter = self._counters.get(key)
        if counter is not None and counter.expires_at <= now:
            del self._counters[key]
            return None
        return counter

    def _evict(self, now: float) -> None:
        """Drop expired entries from the old end, then the oldest while over the bound."""
        while self._counters:
            key, counter = next(iter(self._counters.items()))
            if counter.expires_at > now and len(self._counters) <= self._max_keys:
                return
            del self._counters[key]
