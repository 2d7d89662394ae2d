"""RedisFailureLimiter against the real Redis server (our own DB, see tests/conftest.py).

Real Redis checks what fakeredis cannot vouch for: the Lua script's atomicity under concurrent
clients, the TTLs the server actually keeps, and isolation between tenants and from the rest
of the DB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tenantauth.cache.limits_redis import RedisFailureLimiter
from tenantauth.domain.limits import LimitPolicy, failure_keys, ip_key, user_key
from tenantauth.errors import CacheUnavailableError, RateLimitedError
from tests.support import RUN_LOCK

pytestmark = pytest.mark.redis

POLICY = LimitPolicy(max_failures=5, window_seconds=60, lockout_seconds=900)
IP = "203.0.113.7"
ALICE = [user_key("acme", "alice")]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of our own (emptied) DB of the real Redis."""
    connection = redis.Redis.from_url(redis_url, socket_timeout=2)
    yield connection
    connection.close()


@pytest.fixture
def limiter(client: redis.Redis) -> RedisFailureLimiter:
    """A RedisFailureLimiter with POLICY on the real Redis."""
    return RedisFailureLimiter(client, POLICY)


def test_locks_at_the_threshold_with_the_lockout_ttl(
    limiter: RedisFailureLimiter, client: redis.Redis
) -> None:
    """Four failures pass with the window TTL; the fifth locks with the lockout TTL."""
    for _ in range(4):
        limiter.record_failure(ALICE)
    limiter.check(ALICE)
    assert 59_000 < client.pttl("tenantauth:fail:" + ALICE[0]) <= 60_000
    limiter.record_failure(ALICE)
    with pytest.raises(RateLimitedError) as info:
        limiter.check(ALICE)
    assert info.value.retry_after == 900
    assert 899_000 < client.pttl("tenantauth:fail:" + ALICE[0]) <= 900_000


def test_check_names_the_keys_with_failures(limiter: RedisFailureLimiter) -> None:
    """check returns the keys holding a counter: none at first, then the failed ones."""
    keys = failure_keys("acme", "alice", IP)
    assert limiter.check(keys) == frozenset()
    limiter.record_failure([ip_key(IP)])
    assert limiter.check(keys) == {ip_key(IP)}


def test_concurrent_failures_are_counted_atomically(redis_url: str) -> None:
    """Eight clients recording 50 failures each count exactly 400; the 400th locks."""
    policy = LimitPolicy(max_failures=400, window_seconds=60, lockout_seconds=900)
    barrier = threading.Barrier(8, timeout=10)
    errors: list[BaseException] = []

    def worker() -> None:
        connection = redis.Redis.from_url(redis_url, socket_timeout=5)
        try:
            own = RedisFailureLimiter(connection, policy)
            barrier.wait()
            for _ in range(50):
                own.record_failure(ALICE)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    connection = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        key = "tenantauth:fail:" + ALICE[0]
        assert int(connection.get(key) or 0) == 400
        assert 899_000 < connection.pttl(key) <= 900_000
        with pytest.raises(RateLimitedError):
            RedisFailureLimiter(connection, policy).check(ALICE)
    finally:
        connection.close()


def test_reset_clears_only_the_keys_given(limiter: RedisFailureLimiter) -> None:
    """Resetting the user key after four failures leaves the IP's four in place."""
    for _ in range(4):
        limiter.record_failure(failure_keys("acme", "alice", IP))
    limiter.reset(ALICE)
    limiter.record_failure(failure_keys("acme", "bob", IP))
    limiter.check(ALICE)
    with pytest.raises(RateLimitedError):
        limiter.check([ip_key(IP)])


def test_tenants_are_isolated(limiter: RedisFailureLimiter) -> None:
    """A username locked in tenant acme is not locked in tenant other."""
    for _ in range(5):
        limiter.record_failure(failure_keys("acme", "alice", None))
    limiter.check(failure_keys("other", "alice", None))
    with pytest.raises(RateLimitedError):
        limiter.check(failure_keys("acme", "alice", None))


def test_keys_stay_under_the_prefix_and_hold_no_username(
    limiter: RedisFailureLimiter, client: redis.Redis
) -> None:
    """Only prefixed keys are written (the run lock aside), none holding the username."""
    limiter.record_failure(failure_keys("acme", "alice", IP))
    keys = {k.decode() for k in client.scan_iter(match="*")} - {RUN_LOCK}
    assert keys == {"tenantauth:fail:" + ALICE[0], "tenantauth:fail:ip:" + IP}
    assert not any("alice" in key for key in keys)


def test_unreachable_redis_is_cache_unavailable() -> None:
    """A server that refuses connections gives CacheUnavailableError, not a redis error."""
    # Port 1 on loopback is privileged and unused, so the connection is refused at once.
    no_retry = Retry(NoBackoff(), 0)  # redis-py retries connection errors by default
    connection = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=no_retry)
    try:
        with pytest.raises(CacheUnavailableError):
            RedisFailureLimiter(connection, POLICY).check(ALICE)
    finally:
        connection.close()
