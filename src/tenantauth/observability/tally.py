"""Counts of the hot path kept in the process, folded into prometheus_client values in bulk.

Every answered verification used to update five prometheus_client values (the request counter,
the duration histogram's bucket and sum, the verify counter, the cache-read counter). Under
gunicorn and granian each value lives in a memory-mapped file (multiprocess mode), and each
update takes a lock, checks the pid and packs a float into the file: ~10 µs of a ~45 µs warm
verify (docs/design.md, "The cost of metrics and request logs (measured)"). A ``Tally`` adds
to a plain dict under one lock instead (well under 1 µs), and a daemon thread folds what has
gathered into the real values every ``FOLD_INTERVAL``: one update per series, not per request.

What this costs in exactness: a scrape sees a worker's counts up to ``FOLD_INTERVAL`` late;
the counts of a worker killed with SIGKILL since its last fold are lost (a worker that exits
folds them first: ``fold_all`` in the servers' worker-exit hooks, and at exit). Read in one
process (tests) nothing is late: ``FoldFirst``, registered ahead of every metric, folds
before the registry is read.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

#: How often the pending counts are folded into the metrics (seconds).
FOLD_INTERVAL = 0.1


class Tally:
    """Pending increments of prometheus_client children: counters, and histogram buckets
    with their sums. Thread-safe; folded by a daemon thread started on first use (and again
    in a forked child, which drops what its parent had pending: those are the parent's)."""

    _lock: threading.Lock
    _counts: dict[Any, float]  # a counter child, or (histogram child, bucket): increments
    _sums: dict[Any, float]  # histogram child: the sum of its pending observations
    _thread: threading.Thread | None

    def __init__(self, interval: float = FOLD_INTERVAL) -> None:
        """Fold every ``interval`` seconds once something was added."""
        self._interval = interval
        self._reset()
        ref = weakref.ref(self)  # a process that builds many apps (tests) keeps none alive
        os.register_at_fork(after_in_child=lambda: _reset_if_alive(ref))
        _LIVE.add(self)

    def count(self, child: Any, amount: float = 1.0) -> None:
        """Add ``amount`` to a counter child (``Counter.labels(...)``), folded later."""
        if self._thread is None:
            self._start()
        with self._lock:
            self._counts[child] = self._counts.get(child, 0.0) + amount

    def observe(self, child: Any, bucket: int, amount: float) -> None:
        """Add one observation of ``amount`` that falls in bucket number ``bucket`` (the
        first upper bound >= ``amount``, as ``Histogram.observe`` picks it) of a histogram
        child, folded later."""
        if self._thread is None:
            self._start()
        with self._lock:
            key = (child, bucket)
            self._counts[key] = self._counts.get(key, 0.0) + 1
            self._sums[child] = self._sums.get(child, 0.0) + amount

    def fold(self) -> None:
        """Add everything pending to the metrics now."""
        with self._lock:
            counts, self._counts = self._counts, {}
            sums, self._sums = self._sums, {}
        for key, amount in counts.items():
            if type(key) is tuple:
                child, bucket = key
                # What Histogram.observe does per observation, once per bucket: its buckets
                # and sum are values of their own (tests/unit/test_tally.py holds the
                # exposition to be the same as observe()'s).
                child._buckets[bucket].inc(amount)
            else:
                key.inc(amount)
        for child, total in sums.items():
            child._sum.inc(total)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(
                target=_fold_forever,
                args=(weakref.ref(self), self._interval),
                name="tenantauth-metrics-fold",
                daemon=True,
            )
            thread.start()
            self._thread = thread

    def _reset(self) -> None:
        # A new lock too: a thread of the parent may have held the old one across the fork.
        self._lock = threading.Lock()
        self._counts = {}
        self._sums = {}
        self._thread = None


class FoldFirst:
    """A collector that reads as nothing and folds ``tally`` when a registry is read:
    registered before the metrics, it makes an in-process read exact."""

    def __init__(self, tally: Tally) -> None:
        """Fold ``tally`` on every read of the registry it is registered in."""
        self._tally = tally

    def describe(self) -> list[Any]:
        """No metrics of its own (so registering it claims no names)."""
        return []

    def collect(self) -> Iterator[Any]:
        """Fold, then yield nothing."""
        self._tally.fold()
        return iter(())


def _fold_forever(ref: weakref.ref[Tally], interval: float) -> None:
    while True:
        time.sleep(interval)
        tally = ref()
        if tally is None:
            return
        tally.fold()
        del tally


def _reset_if_alive(ref: weakref.ref[Tally]) -> None:
    tally = ref()
    if tally is not None:
        tally._reset()


_LIVE: weakref.WeakSet[Tally] = weakref.WeakSet()


def fold_all() -> None:
    """Fold every tally of this process now (a worker exiting: gunicorn's ``worker_exit``,
    granian's exit finalizer, which runs where ``atexit`` does not; and at exit)."""
    for tally in list(_LIVE):
        tally.fold()


atexit.register(fold_all)
