"""LeaseListener and Invalidator against a registry stand-in (no Redis): the thread's life
cycle and the writer's bounds. The protocol's races, on real Redis, are in
tests/contract/test_memory_race.py."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from tenantauth.domain.models import AckStatus, Invalidation, Publication, Registration
from tenantauth.domain.verifying.leases import Invalidator, LeaseListener
from tenantauth.domain.verifying.memory import VerifyMemory
from tenantauth.errors import CacheUnavailableError, UnconfirmedChangeError

LEASE = 0.4


class Registry:
    """A LeaseRegistry whose reads block until ``release`` is set."""

    def __init__(self, pending: int = 0) -> None:
        """No one registered; ``acks`` reports ``pending`` live leases not acknowledged."""
        self.release = threading.Event()
        self.reading = threading.Event()
        self.left: list[str] = []
        self.pending = pending
        self.published: list[str] = []

    def register(self, worker_id: str) -> Registration:
        """Always succeeds."""
        return Registration(0, "0-0", "inc")

    def read(self, cursor: str, block_seconds: float) -> tuple[list[Invalidation], str]:
        """Block until released."""
        self.reading.set()
        assert self.release.wait(5)
        return [], cursor

    def renew(self, worker_id: str, incarnation: str, applied: int) -> bool:
        """Always succeeds."""
        return True

    def deregister(self, worker_id: str) -> None:
        """Record who left."""
        self.left.append(worker_id)

    def publish(self, tenant_id: str) -> Publication:
        """Record the change."""
        self.published.append(tenant_id)
        return Publication(len(self.published), "inc")

    def acks(self, publication: Publication) -> AckStatus:
        """``pending`` live leases, an old registry."""
        return AckStatus(self.pending, 0.0)

    def wait_acknowledged(self, publication: Publication, seconds: float) -> bool:
        """No word ever comes."""
        return False


class Declared:
    """Storage stand-in: memory is in use."""

    def declare_memory(self) -> None:
        """Nothing to record."""

    def memory_declared(self) -> bool:
        """Always."""
        return True


def test_stopping_during_a_blocked_read_ends_the_thread_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker leaving (gunicorn's worker_exit) while its listener waits on the stream:
    memory untrusted at once, the worker leaves the registry, the thread ends, nothing
    logged as a failure."""
    registry = Registry()
    memory = VerifyMemory(LEASE)
    listener = LeaseListener(registry, memory, Declared(), lease_seconds=LEASE)  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="tenantauth.domain.verifying.leases")
    listener.ensure_started()
    assert registry.reading.wait(5)
    assert memory.live()
    thread: Any = listener._thread  # the thread's end is what is tested
    listener.stop()
    assert not memory.live()
    assert registry.left == [listener.worker_id]
    registry.release.set()
    thread.join(5)
    assert not thread.is_alive()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_the_writer_gives_up_after_three_leases_and_says_unconfirmed() -> None:
    """A lease that neither acknowledges nor expires (a bug, or clocks far apart): the change
    is committed, so the writer answers 503 change_unconfirmed, never returns early."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    invalidator = Invalidator(
        Registry(pending=1),  # type: ignore[arg-type]
        Declared(),  # type: ignore[arg-type]
        lease_seconds=LEASE,
        monotonic=lambda: clock[0],
        sleep=sleep,
    )
    with pytest.raises(UnconfirmedChangeError):
        invalidator.invalidate("acme")
    assert 3 * LEASE <= clock[0] <= 3 * LEASE + 0.01


def test_the_writer_reports_an_unreachable_registry_as_unconfirmed() -> None:
    """Publishing fails: the committed change is unconfirmed (503), to be repeated."""

    class Down(Registry):
        def publish(self, tenant_id: str) -> Publication:
            raise CacheUnavailableError("down")

    invalidator = Invalidator(Down(), Declared(), lease_seconds=LEASE)  # type: ignore[arg-type]
    with pytest.raises(UnconfirmedChangeError):
        invalidator.invalidate("acme")


def test_nothing_is_published_until_memory_was_declared() -> None:
    """No worker ever verified from memory: a change neither publishes nor waits."""

    class Never(Declared):
        def memory_declared(self) -> bool:
            return False

    registry = Registry(pending=1)
    started = time.monotonic()
    Invalidator(registry, Never(), lease_seconds=LEASE).invalidate("acme")  # type: ignore[arg-type]
    assert registry.published == []
    assert time.monotonic() - started < LEASE


def test_the_writer_rides_out_a_failed_publish_and_failed_polls() -> None:
    """Under load a Redis call may time out: one failed publish is tried again, failed polls
    are polled again, and only a successful poll ends the wait."""

    class Flaky(Registry):
        def __init__(self) -> None:
            super().__init__(pending=0)
            self.publish_failures, self.poll_failures = 1, 3

        def publish(self, tenant_id: str) -> Publication:
            if self.publish_failures:
                self.publish_failures -= 1
                raise CacheUnavailableError("timeout")
            return super().publish(tenant_id)

        def acks(self, publication: Publication) -> AckStatus:
            if self.poll_failures:
                self.poll_failures -= 1
                raise CacheUnavailableError("timeout")
            return super().acks(publication)

    registry = Flaky()
    Invalidator(registry, Declared(), lease_seconds=LEASE).invalidate("acme")  # type: ignore[arg-type]
    assert registry.published == ["acme"] and registry.poll_failures == 0


def test_the_writer_gives_up_on_a_registry_unreachable_for_three_leases() -> None:
    """Polls that keep failing: 503 change_unconfirmed after three leases, not before."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    class Unreachable(Registry):
        def acks(self, publication: Publication) -> AckStatus:
            raise CacheUnavailableError("down")

    invalidator = Invalidator(
        Unreachable(),  # type: ignore[arg-type]
        Declared(),  # type: ignore[arg-type]
        lease_seconds=LEASE,
        monotonic=lambda: clock[0],
        sleep=sleep,
    )
    with pytest.raises(UnconfirmedChangeError):
        invalidator.invalidate("acme")
    assert clock[0] >= 3 * LEASE


class Woken(Registry):
    """Publishes to two live leases; records the writer's wait and counts its polls."""

    def __init__(self, word: bool | None) -> None:
        """``word``: what the wait returns (None: it raises, Redis timing out)."""
        super().__init__(pending=0)
        self.word = word
        self.waits: list[float] = []
        self.polls = 0

    def publish(self, tenant_id: str) -> Publication:
        """Two live leases to hear from."""
        self.published.append(tenant_id)
        return Publication(len(self.published), "inc", awaited=2)

    def wait_acknowledged(self, publication: Publication, seconds: float) -> bool:
        """Return ``word`` (or raise)."""
        self.waits.append(seconds)
        if self.word is None:
            raise CacheUnavailableError("timeout")
        return self.word

    def acks(self, publication: Publication) -> AckStatus:
        """Pending until the third poll."""
        self.polls += 1
        return AckStatus(0 if self.word or self.polls >= 3 else 1, 0.0)


def _invalidate(word: bool | None) -> tuple[Woken, list[float]]:
    """One change through an Invalidator whose registry's wait returns ``word``; return the
    registry and the sleeps between polls."""
    registry = Woken(word=word)
    slept: list[float] = []
    invalidator = Invalidator(
        registry,  # type: ignore[arg-type]
        Declared(),  # type: ignore[arg-type]
        lease_seconds=LEASE,
        sleep=slept.append,
    )
    invalidator.invalidate("acme")
    return registry, slept


def test_the_writer_waits_for_word_of_the_last_ack_then_polls_once() -> None:
    """Leases to hear from: one blocking wait (up to a lease), then the poll that decides;
    no millisecond polling in between."""
    registry, slept = _invalidate(word=True)
    assert registry.waits == [LEASE]
    assert registry.polls == 1 and slept == []


@pytest.mark.parametrize("word", [False, None], ids=["no word", "wait failed"])
def test_without_word_the_writer_polls_as_before(word: bool | None) -> None:
    """The wait timed out (a lease expired instead of acknowledging) or failed: the polls
    decide, every millisecond, until nothing is pending."""
    registry, slept = _invalidate(word)
    assert registry.waits == [LEASE]
    assert registry.polls == 3 and len(slept) == 2
