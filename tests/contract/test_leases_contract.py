"""RedisLeases against a real Redis: each script rule of docs/design.md ("The protocol")."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from tenantauth.cache.leases import RedisLeases
from tenantauth.cache.leases_lua import WAITING, WAITING_SEQS
from tenantauth.domain.models import Invalidation
from tests.support import RUN_LOCK, flush_claimed_db

LEASE = 0.3


@pytest.fixture
def leases(redis_url: str) -> Iterator[RedisLeases]:
    """The registry on the test's own (flushed) Redis DB, with a short lease."""
    registry = RedisLeases(redis_url, lease_seconds=LEASE, timeout=2.0)
    yield registry
    registry.close()


def test_register_publish_read_and_acknowledge(leases: RedisLeases) -> None:
    """A member is pending for an invalidation until its renewal carries the ack."""
    me = leases.register("w1")
    assert me.seq == 0 and me.cursor == "0-0"
    published = leases.publish("acme")
    assert published.seq == 1 and published.incarnation == me.incarnation
    entries, cursor = leases.read(me.cursor, 0.01)
    assert entries == [Invalidation(1, "acme")]
    assert leases.acks(published).pending == 1
    assert leases.renew("w1", me.incarnation, 1)
    assert leases.acks(published).pending == 0
    assert leases.read(cursor, 0.01) == ([], cursor)  # nothing more, cursor unchanged


def test_a_new_member_starts_acknowledged_at_the_current_seq(leases: RedisLeases) -> None:
    """Registering after an invalidation: nothing held, nothing to wait for."""
    leases.register("w1")
    published = leases.publish("acme")
    late = leases.register("w2")
    assert late.seq == published.seq
    entries, _ = leases.read(late.cursor, 0.01)
    assert entries == []  # the cursor is past the entry
    assert leases.acks(published).pending == 1  # only w1


def test_an_expired_lease_is_not_waited_for_and_cannot_be_renewed(leases: RedisLeases) -> None:
    """Past its expiry a member is no longer pending, and its renewal is refused: the
    listener must register again (a stalled listener cannot revive its lease)."""
    me = leases.register("w1")
    published = leases.publish("acme")
    time.sleep(LEASE + 0.05)
    assert leases.acks(published).pending == 0
    assert not leases.renew("w1", me.incarnation, 1)


def test_deregistered_workers_are_not_waited_for(leases: RedisLeases) -> None:
    """A worker that left (gunicorn's worker_exit) holds up no change."""
    me = leases.register("w1")
    leases.deregister("w1")
    assert leases.acks(leases.publish("acme")).pending == 0
    assert not leases.renew("w1", me.incarnation, 1)


def test_a_lost_registry_is_noticed_and_restarted_with_its_age(
    leases: RedisLeases, redis_url: str
) -> None:
    """Redis loses its data: renewals under the old incarnation are refused, a writer's poll
    reports -1 (no ack can come) and the new registry's age, and every seq starts again."""
    me = leases.register("w1")
    published = leases.publish("acme")
    time.sleep(LEASE)  # the registry is one lease old: nothing to settle
    assert leases.acks(published).settle_seconds == 0
    client = redis.Redis.from_url(redis_url)
    try:
        claim = client.get(RUN_LOCK)
        flush_claimed_db(client)
        assert claim is not None and client.get(RUN_LOCK) == claim  # still this run's DB
    finally:
        client.close()
    assert not leases.renew("w1", me.incarnation, 1)
    status = leases.acks(published)
    assert status.pending == -1
    assert 0 < status.settle_seconds <= LEASE
    again = leases.register("w1")
    assert again.incarnation != me.incarnation and again.seq == 0


def test_a_young_registry_must_settle(leases: RedisLeases) -> None:
    """The writer learns how long until the registry is one lease old."""
    status = leases.acks(leases.publish("acme"))  # the publish began the registry
    assert status.pending == 0
    assert 0 < status.settle_seconds <= LEASE


def test_the_last_acknowledgement_wakes_the_writer(leases: RedisLeases) -> None:
    """A publication counts the live leases; the writer hears nothing until the last of
    them has acknowledged, then at once (docs/design.md, "Woken acknowledgements")."""
    me, other = leases.register("w1"), leases.register("w2")
    published = leases.publish("acme")
    assert published.awaited == 2
    assert leases.renew("w1", me.incarnation, published.seq)
    assert not leases.wait_acknowledged(published, 0.05)  # w2 has not acknowledged
    assert leases.renew("w2", other.incarnation, published.seq)
    assert leases.wait_acknowledged(published, 5.0)
    assert leases.acks(published).pending == 0


def test_a_renewal_without_the_ack_does_not_count_down(leases: RedisLeases) -> None:
    """A listener renewing before it read the entry (ack unchanged) is still awaited."""
    me = leases.register("w1")
    published = leases.publish("acme")
    assert leases.renew("w1", me.incarnation, me.seq)
    assert not leases.wait_acknowledged(published, 0.05)
    assert leases.renew("w1", me.incarnation, published.seq)
    assert leases.wait_acknowledged(published, 5.0)


def test_each_writer_hears_of_its_own_publication_only(leases: RedisLeases) -> None:
    """Two changes in flight: an ack that reaches the first one wakes its writer, not the
    second one's; one that reaches both wakes both."""
    me = leases.register("w1")
    first, second = leases.publish("acme"), leases.publish("globex")
    assert leases.renew("w1", me.incarnation, first.seq)
    assert leases.wait_acknowledged(first, 5.0)
    assert not leases.wait_acknowledged(second, 0.05)
    assert leases.renew("w1", me.incarnation, second.seq)
    assert leases.wait_acknowledged(second, 5.0)


def test_an_expired_lease_sends_no_word_and_polls_decide(leases: RedisLeases) -> None:
    """A counted lease that expires instead of acknowledging never wakes the writer: its
    wait times out, and the poll (the decision) finds nothing pending."""
    leases.register("w1")
    published = leases.publish("acme")
    assert published.awaited == 1
    assert not leases.wait_acknowledged(published, LEASE + 0.05)
    assert leases.acks(published).pending == 0


def test_no_live_lease_means_nothing_awaited(leases: RedisLeases) -> None:
    """With no worker registered a publication awaits no one (the writer does not block)."""
    assert leases.publish("acme").awaited == 0


def test_the_waiting_counts_are_bounded(leases: RedisLeases, redis_url: str) -> None:
    """A publication's count is forgotten once its writer's poll finds nothing pending,
    and the counts expire three leases after the last publication (a writer that died
    waiting leaves nothing for ever)."""
    me = leases.register("w1")
    published = leases.publish("acme")
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.hexists(WAITING, str(published.seq))
        assert client.zscore(WAITING_SEQS, str(published.seq)) == published.seq
        for key in (WAITING, WAITING_SEQS):
            assert 0 < client.pttl(key) <= 3 * LEASE * 1000
        assert leases.renew("w1", me.incarnation, published.seq)
        assert leases.acks(published).pending == 0
        assert not client.hexists(WAITING, str(published.seq))
        assert client.zscore(WAITING_SEQS, str(published.seq)) is None
        leases.publish("globex")  # never acknowledged: its count expires
        time.sleep(3 * LEASE + 0.05)
        assert not client.exists(WAITING, WAITING_SEQS)
    finally:
        client.close()


@pytest.mark.usefixtures("leases")  # for its flushed Redis DB
def test_past_a_thousand_waits_the_counts_start_again(redis_url: str) -> None:
    """Counts left by writers that never finished are dropped whole at 1,000: later
    publications are counted afresh, and the writers whose counts went poll as before.

    On a registry of its own whose lease outlives the loop: with the fixture's 0.3 s lease,
    the member's lease ran out during the 1,000 publications on a loaded machine (853 of
    them found it live), and a publication counts only live leases."""
    registry = RedisLeases(redis_url, lease_seconds=60.0, timeout=2.0)
    me = registry.register("w1")
    client = redis.Redis.from_url(redis_url)
    try:
        for _ in range(1000):
            registry.publish("acme")
        assert client.zcard(WAITING_SEQS) == 1000
        latest = registry.publish("acme")
        assert client.zcard(WAITING_SEQS) == 1 and client.hlen(WAITING) == 1
        assert registry.renew("w1", me.incarnation, latest.seq)
        assert registry.wait_acknowledged(latest, 5.0)
    finally:
        client.close()
        registry.close()
