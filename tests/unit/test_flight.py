"""SingleFlight (domain/verifying/flight.py): coalescing misses without ever serving a read
that started before the caller arrived."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from tenantauth.domain.verifying.flight import SingleFlight
from tenantauth.errors import StorageUnavailableError

WAIT = 5.0


class GatedLoad:
    """A load that records each start and blocks until its gate opens."""

    def __init__(self) -> None:
        self.starts: list[bool] = []
        self.started = threading.Event()
        self.gate = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, waited: bool) -> int:
        with self.lock:
            self.starts.append(waited)
            number = len(self.starts)
        self.started.set()
        assert self.gate.wait(WAIT)
        return number


def run_in_threads(count: int, fn: Callable[[], object]) -> tuple[list[threading.Thread], list]:
    results: list = []

    def body() -> None:
        try:
            results.append(fn())
        except Exception as exc:  # noqa: BLE001 - handed to the test
            results.append(exc)

    threads = [threading.Thread(target=body, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def test_a_lone_call_runs_its_load_without_waiting() -> None:
    """No contention: the caller's own load runs at once, with waited=False."""
    flight: SingleFlight[str] = SingleFlight(WAIT)
    assert flight.run("t", lambda waited: f"waited={waited}") == "waited=False"


def test_calls_arriving_during_a_read_share_the_next_read_not_the_running_one() -> None:
    """The rule that keeps revocation safe: nobody joins a read that already started.

    One read runs; 20 callers arrive meanwhile. They must all get a *second* read, which starts
    only after they arrived (and after the first ended) — one read for all 20, not 20 reads.
    """
    flight: SingleFlight[int] = SingleFlight(WAIT)
    load = GatedLoad()
    first, first_result = run_in_threads(1, lambda: flight.run("t", load))
    assert load.started.wait(WAIT)
    load.started.clear()
    late, late_results = run_in_threads(20, lambda: flight.run("t", load))
    # Nobody may start the second read while the first runs.
    assert not load.started.wait(0.2)
    assert load.starts == [False]
    load.gate.set()
    for thread in first + late:
        thread.join(WAIT)
    assert first_result == [1]
    assert late_results == [2] * 20  # all served by the read that began after they came
    assert load.starts == [False, True]  # the second read knew it had waited


def test_keys_do_not_block_each_other() -> None:
    """A slow read of one tenant does not delay another tenant's read."""
    flight: SingleFlight[int] = SingleFlight(WAIT)
    slow = GatedLoad()
    threads, _ = run_in_threads(1, lambda: flight.run("slow", slow))
    assert slow.started.wait(WAIT)
    assert flight.run("fast", lambda waited: 7) == 7
    slow.gate.set()
    for thread in threads:
        thread.join(WAIT)


def test_an_error_reaches_every_caller_of_that_read_and_the_next_read_runs_afresh() -> None:
    """A failed read fails the callers it served (503 upstream); later calls try again."""
    flight: SingleFlight[int] = SingleFlight(WAIT)
    gate = threading.Event()
    started = threading.Event()

    def failing(waited: bool) -> int:
        started.set()
        assert gate.wait(WAIT)
        raise StorageUnavailableError("database down")

    first, first_results = run_in_threads(1, lambda: flight.run("t", failing))
    assert started.wait(WAIT)
    gate.set()
    for thread in first:
        thread.join(WAIT)
    assert isinstance(first_results[0], StorageUnavailableError)
    assert flight.run("t", lambda waited: 3) == 3


def test_waiting_is_bounded_when_the_read_ahead_hangs() -> None:
    """Callers queued behind a hung read give up after the timeout with a 503 error."""
    flight: SingleFlight[int] = SingleFlight(0.2)
    hung = GatedLoad()
    first, _ = run_in_threads(1, lambda: flight.run("t", hung))
    assert hung.started.wait(WAIT)
    with pytest.raises(StorageUnavailableError):
        flight.run("t", hung)
    assert hung.starts == [False]  # the queued read never started
    hung.gate.set()
    for thread in first:
        thread.join(WAIT)
    assert flight.run("t", lambda waited: 9) == 9  # and the key is usable again
