"""The service's default clock: wall-clock time that never goes backwards within a process.

Token claims (RFC 7519 §4.1.4–§4.1.6: ``exp``, ``nbf``, ``iat``) are wall-clock times, so the
verifier must read the wall clock. But the wall clock can step backwards (an NTP step, an
operator fixing a clock that ran ahead, a VM restored from a snapshot). A plain
``time.time()`` would then make an expired token valid again for as long as the step, however
far beyond the leeway. ``SteadyWallClock`` follows the wall clock forwards and, after a step
backwards, keeps counting on from the last value it returned at the rate of the monotonic
clock until the wall clock catches up. So within one process:

- ``now()`` never decreases (a token rejected as expired stays rejected);
- time keeps flowing after a backward step (it does not freeze, so newly issued tokens still
  get distinct, increasing ``iat``/``exp`` and nothing waits for the step to be undone);
- a forward step is followed at once (the wall clock is the authority on the real time).

Durations (circuit breakers, rate-limit windows, deadlines) must not use this clock at all:
they use ``time.monotonic`` (see ``cache/redis.py``, ``cache/limits_memory.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class SteadyWallClock:
    """Seconds since the Unix epoch that never go backwards within this process."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read ``wall`` for the time of day and ``monotonic`` for elapsed time (tests pass
        fakes of both)."""
        self._wall = wall
        self._monotonic = monotonic
        # A lock, not just atomic assignment: two threads reading across a backward step
        # could otherwise store an older anchor after a newer value was returned.
        self._lock = threading.Lock()
        # The last wall-clock reading that was not behind, and the monotonic instant of it.
        # Values after a backward step are computed from this fixed anchor (not by adding up
        # small steps), so no rounding error accumulates however often ``now`` is called.
        self._anchor = float("-inf")
        self._anchor_at = 0.0

    def now(self) -> float:
        """Return the wall-clock time; if the wall clock went back, return instead the last
        wall reading that was not behind plus the monotonic time elapsed since. Never
        decreases."""
        with self._lock:
            at = self._monotonic()
            wall = self._wall()
            steady = self._anchor + (at - self._anchor_at)
            if wall >= steady:
                self._anchor, self._anchor_at = wall, at
                return wall
            return steady
