"""Brute-force limiting: key shapes, LimitPolicy, and both limiters (no sockets).

MemoryFailureLimiter runs on a fixed clock; RedisFailureLimiter on fakeredis, where time is
real, so its expiries are checked through the TTLs it sets rather than by waiting.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable

import fakeredis
import pytest

from tenantauth.cache.limits_memory import MemoryFailureLimiter
from tenantauth.cache.limits_redis import RedisFailureLimiter
from tenantauth.domain.limits import (
    FailureLimiter,
    LimitPolicy,
    failure_keys,
    ip_key,
    retry_after_seconds,
    user_key,
)
from tenantauth.errors import CacheUnavailableError, ConfigurationError, RateLimitedError
from tests.support import FixedClock

MakeLimiter = Callable[..., FailureLimiter]
POLICY = LimitPolicy(max_failures=5, window_seconds=60, lockout_seconds=900)
IP = "203.0.113.7"


# --- keys and policy ---------------------------------------------------------------------------


def test_user_key_shape_hides_the_username() -> None:
    """user_key is '<tenant>:user:<sha256 hex of the case-folded name>', no raw username."""
    key = user_key("acme", "Alice")
    assert key == "acme:user:" + hashlib.sha256(b"alice").hexdigest()


@pytest.mark.parametrize("variant", ["alice", "ALICE", "Alice", "\uff41lice"])
def test_user_key_is_shared_by_case_and_width_variants(variant: str) -> None:
    """Case and compatibility variants of one name share a counter (NFKC + casefold)."""
    assert user_key("acme", variant) == user_key("acme", "alice")


def test_user_key_differs_by_tenant_and_name() -> None:
    """Tenants and usernames never share a key."""
    assert (
        len({user_key("acme", "alice"), user_key("other", "alice"), user_key("acme", "bob")}) == 3
    )


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "ip:203.0.113.7"),
        ("::ffff:203.0.113.7", "ip:203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "ip:2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "ip:2001:db8:1:2::/64"),
        ("fe80::1%eth0", "ip:fe80::/64"),
    ],
)
def test_ip_key_normalises_addresses(address: str, key: str) -> None:
    """IPv4 as is, IPv4-mapped as IPv4, IPv6 per /64 network."""
    assert ip_key(address) == key


def test_ip_key_hashes_text_that_is_not_an_address() -> None:
    """Non-address text is hashed, so caller-controlled text never lands in a key."""
    key = ip_key("evil\r\nkey*")
    assert key == "ip:invalid:" + hashlib.sha256(b"evil\r\nkey*").hexdigest()


def test_failure_keys_are_user_then_ip() -> None:
    """failure_keys is [user key, ip key], or only the user key without an address."""
    assert failure_keys("acme", "alice", IP) == [user_key("acme", "alice"), ip_key(IP)]
    assert failure_keys("acme", "alice", None) == [user_key("acme", "alice")]


@pytest.mark.parametrize(
    "fields",
    [
        {"max_failures": 0},
        {"window_seconds": 0},
        {"lockout_seconds": -1},
        {"ip_max_failures": 0},
    ],
)
def test_policy_refuses_non_positive_numbers(fields: dict[str, int]) -> None:
    """A LimitPolicy with a zero or negative number is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        LimitPolicy(**fields)


def test_policy_threshold_for_ip_keys() -> None:
    """ip_max_failures applies to ip keys only, and defaults to max_failures."""
    assert LimitPolicy(max_failures=5).threshold(ip_key(IP)) == 5
    policy = LimitPolicy(max_failures=5, ip_max_failures=50)
    assert policy.threshold(ip_key(IP)) == 50
    assert policy.threshold(user_key("acme", "ip:x")) == 5


@pytest.mark.parametrize(("remaining", "header"), [(0.0, 1), (0.001, 1), (1.0, 1), (1.2, 2)])
def test_retry_after_rounds_up_to_at_least_one(remaining: float, header: int) -> None:
    """Remaining lockout becomes whole seconds, rounded up, never 0."""
    assert retry_after_seconds(remaining) == header


# --- behaviour shared by both limiters ---------------------------------------------------------


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """A private fakeredis server."""
    return fakeredis.FakeServer()


@pytest.fixture
def fake_client(fake_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    """A client of ``fake_server``."""
    return fakeredis.FakeRedis(server=fake_server)


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest, clock: FixedClock) -> MakeLimiter:
    """A factory of limiters with a given policy: in memory, or on fakeredis."""

    def make(policy: LimitPolicy = POLICY) -> FailureLimiter:
        if request.param == "memory":
            return MemoryFailureLimiter(policy, clock.now)
        return RedisFailureLimiter(request.getfixturevalue("fake_client"), policy)

    return make


@pytest.fixture
def limiter(make_limiter: MakeLimiter) -> FailureLimiter:
    """A limiter with POLICY (5 failures in 60 s lock for 900 s)."""
    return make_limiter()


def fail(limiter: FailureLimiter, times: int, tenant: str = "acme", user: str = "alice") -> None:
    """Record ``times`` failures of ``user`` from IP."""
    for _ in range(times):
        limiter.record_failure(failure_keys(tenant, user, IP))


def test_no_failures_no_lock(limiter: FailureLimiter) -> None:
    """check passes for keys that never failed, and for no keys at all."""
    limiter.check(failure_keys("acme", "alice", IP))
    limiter.check([])
    limiter.record_failure([])
    limiter.reset([])


def test_check_returns_the_keys_with_failures_counted(limiter: FailureLimiter) -> None:
    """check names the keys that have failures counted (a success may skip resetting the
    others): none before a failure, the user and IP keys after one, the IP key after a reset."""
    keys = failure_keys("acme", "alice", IP)
    assert limiter.check(keys) == frozenset()
    fail(limiter, 1)
    assert limiter.check(keys) == frozenset(keys)
    limiter.reset([user_key("acme", "alice")])
    assert limiter.check(keys) == {ip_key(IP)}


def test_locks_at_the_threshold_with_retry_after(limiter: FailureLimiter) -> None:
    """Four failures pass; the fifth locks, with Retry-After equal to the lockout."""
    fail(limiter, 4)
    limiter.check(failure_keys("acme", "alice", IP))
    fail(limiter, 1)
    with pytest.raises(RateLimitedError) as info:
        limiter.check([user_key("acme", "alice")])
    assert info.value.retry_after == 900


def test_lock_is_per_tenant_and_username(limiter: FailureLimiter) -> None:
    """A locked username locks neither another username nor the same name in another tenant."""
    fail(limiter, 5)
    limiter.check(failure_keys("acme", "bob", None))
    limiter.check(failure_keys("other", "alice", None))
    with pytest.raises(RateLimitedError):
        limiter.check(failure_keys("acme", "alice", None))


def test_ip_key_locks_across_usernames(limiter: FailureLimiter) -> None:
    """Failures for five different usernames from one address lock that address."""
    for name in ("a", "b", "c", "d", "e"):
        fail(limiter, 1, user=name)
    limiter.check(failure_keys("acme", "f", "198.51.100.1"))
    with pytest.raises(RateLimitedError):
        limiter.check(failure_keys("acme", "f", IP))


def test_reset_of_the_user_key_keeps_the_ip_count(limiter: FailureLimiter) -> None:
    """A success resets the username's failures, but the address keeps counting."""
    fail(limiter, 4)
    limiter.reset([user_key("acme", "alice")])
    fail(limiter, 4)
    limiter.check([user_key("acme", "alice")])
    with pytest.raises(RateLimitedError):
        limiter.check([ip_key(IP)])


def test_unknown_and_known_usernames_get_the_same_answer(limiter: FailureLimiter) -> None:
    """The lockout answer carries nothing about the username: same text, same Retry-After."""
    answers = []
    for tenant, user in (("acme", "existing-user"), ("other", "no-such-user")):
        for _ in range(5):
            limiter.record_failure(failure_keys(tenant, user, None))
        with pytest.raises(RateLimitedError) as info:
            limiter.check(failure_keys(tenant, user, None))
        answers.append((info.value.detail, info.value.retry_after, info.value.code))
    assert answers[0] == answers[1]
    assert "user" not in answers[0][0]


def test_ip_threshold_can_be_higher(make_limiter: MakeLimiter) -> None:
    """With ip_max_failures=8 the username locks at 5 while the address locks only at 8."""
    limiter = make_limiter(
        LimitPolicy(max_failures=5, window_seconds=60, lockout_seconds=900, ip_max_failures=8)
    )
    for name in "abcdefg":
        fail(limiter, 1, user=name)
    limiter.check([ip_key(IP)])
    fail(limiter, 1, user="h")
    with pytest.raises(RateLimitedError):
        limiter.check([ip_key(IP)])


# --- MemoryFailureLimiter on a fixed clock -----------------------------------------------------


@pytest.fixture
def memory(clock: FixedClock) -> MemoryFailureLimiter:
    """A MemoryFailureLimiter with POLICY on the fixed clock."""
    return MemoryFailureLimiter(POLICY, clock.now)


ALICE = [user_key("acme", "alice")]


def test_memory_window_runs_from_the_first_failure(
    memory: MemoryFailureLimiter, clock: FixedClock
) -> None:
    """Failures older than the window (from the first failure) are forgotten."""
    memory.record_failure(ALICE)
    clock.advance(59)
    for _ in range(3):
        memory.record_failure(ALICE)
    clock.advance(1)
    memory.record_failure(ALICE)  # the window closed: this is failure 1 of a new one
    memory.check(ALICE)


def test_memory_lockout_expires_and_counting_restarts(
    memory: MemoryFailureLimiter, clock: FixedClock
) -> None:
    """A lock lasts exactly the lockout, rounding Retry-After up; afterwards counting restarts."""
    for _ in range(5):
        memory.record_failure(ALICE)
    clock.advance(0.5)
    with pytest.raises(RateLimitedError) as info:
        memory.check(ALICE)
    assert info.value.retry_after == 900
    clock.advance(899)
    with pytest.raises(RateLimitedError) as info:
        memory.check(ALICE)
    assert info.value.retry_after == 1
    clock.advance(0.5)
    memory.check(ALICE)
    memory.record_failure(ALICE)
    memory.check(ALICE)


def test_memory_failures_while_locked_do_not_extend_the_lock(
    memory: MemoryFailureLimiter, clock: FixedClock
) -> None:
    """Failures recorded during a lockout leave its end where it was."""
    for _ in range(5):
        memory.record_failure(ALICE)
    clock.advance(600)
    memory.record_failure(ALICE)
    with pytest.raises(RateLimitedError) as info:
        memory.check(ALICE)
    assert info.value.retry_after == 300


def test_memory_is_bounded(clock: FixedClock) -> None:
    """Beyond max_keys the least recently updated keys are dropped."""
    limiter = MemoryFailureLimiter(LimitPolicy(max_failures=2), clock.now, max_keys=3)
    keys = [[user_key("acme", f"user{i}")] for i in range(5)]
    for key in keys:
        limiter.record_failure(key)
    assert len(limiter) == 3
    limiter.record_failure(keys[0])  # evicted earlier, so this is its first failure again
    limiter.check(keys[0])
    limiter.record_failure(keys[4])  # kept: this is its second failure
    with pytest.raises(RateLimitedError):
        limiter.check(keys[4])


def test_memory_drops_expired_keys(memory: MemoryFailureLimiter, clock: FixedClock) -> None:
    """Expired counters are removed when newer failures arrive."""
    for i in range(10):
        memory.record_failure([user_key("acme", f"user{i}")])
    clock.advance(61)
    memory.record_failure(ALICE)
    assert len(memory) == 1


def test_memory_operations_exclude_each_other(clock: FixedClock) -> None:
    """While one thread is inside record_failure, check in another waits, then sees it whole."""
    inside, release = threading.Event(), threading.Event()

    class GatedPolicy(LimitPolicy):
        def threshold(self, key: str) -> int:
            if threading.current_thread().name == "recorder":
                inside.set()
                release.wait(5)
            return super().threshold(key)

    limiter = MemoryFailureLimiter(GatedPolicy(max_failures=1), clock.now)
    answers: list[str] = []

    def check() -> None:
        try:
            limiter.check(ALICE)
        except RateLimitedError:
            answers.append("locked")
        else:
            answers.append("open")

    recorder = threading.Thread(target=limiter.record_failure, args=(ALICE,), name="recorder")
    checker = threading.Thread(target=check)
    recorder.start()
    assert inside.wait(5)
    checker.start()
    checker.join(0.2)
    waited = checker.is_alive()
    release.set()
    recorder.join(5)
    checker.join(5)
    assert waited
    assert answers == ["locked"]


# --- RedisFailureLimiter on fakeredis ----------------------------------------------------------


@pytest.fixture
def on_redis(fake_client: fakeredis.FakeRedis) -> RedisFailureLimiter:
    """A RedisFailureLimiter with POLICY on fakeredis."""
    return RedisFailureLimiter(fake_client, POLICY)


REDIS_ALICE = "tenantauth:fail:" + ALICE[0]


def test_redis_keys_are_prefixed_and_hold_no_username(
    on_redis: RedisFailureLimiter, fake_client: fakeredis.FakeRedis
) -> None:
    """Every key is 'tenantauth:fail:<key>'; none contains the username."""
    on_redis.record_failure(failure_keys("acme", "alice", IP))
    stored = sorted(k.decode() for k in fake_client.keys("*"))
    assert stored == sorted(["tenantauth:fail:ip:203.0.113.7", REDIS_ALICE])
    assert not any("alice" in key for key in stored)


def test_redis_ttl_is_the_window_then_the_lockout(
    on_redis: RedisFailureLimiter, fake_client: fakeredis.FakeRedis
) -> None:
    """The first failure sets the window as TTL; reaching the threshold sets the lockout."""
    on_redis.record_failure(ALICE)
    assert 59_000 < fake_client.pttl(REDIS_ALICE) <= 60_000
    for _ in range(3):
        on_redis.record_failure(ALICE)
    assert fake_client.pttl(REDIS_ALICE) <= 60_000
    on_redis.record_failure(ALICE)
    assert 899_000 < fake_client.pttl(REDIS_ALICE) <= 900_000
    assert int(fake_client.get(REDIS_ALICE) or 0) == 5


def test_redis_retry_after_is_the_remaining_ttl_rounded_up(
    on_redis: RedisFailureLimiter, fake_client: fakeredis.FakeRedis
) -> None:
    """Retry-After is the lock key's remaining TTL in seconds, rounded up."""
    for _ in range(5):
        on_redis.record_failure(ALICE)
    fake_client.pexpire(REDIS_ALICE, 1500)
    with pytest.raises(RateLimitedError) as info:
        on_redis.check(ALICE)
    assert info.value.retry_after == 2


def test_redis_failures_while_locked_do_not_extend_the_lock(
    on_redis: RedisFailureLimiter, fake_client: fakeredis.FakeRedis
) -> None:
    """A failure recorded during a lockout leaves its TTL alone."""
    for _ in range(5):
        on_redis.record_failure(ALICE)
    fake_client.pexpire(REDIS_ALICE, 5000)
    on_redis.record_failure(ALICE)
    assert fake_client.pttl(REDIS_ALICE) <= 5000


def test_redis_counter_without_ttl_heals(
    on_redis: RedisFailureLimiter, fake_client: fakeredis.FakeRedis
) -> None:
    """A counter that lost its TTL gets one back: locked ones the lockout, others the window."""
    fake_client.set(REDIS_ALICE, 7)
    with pytest.raises(RateLimitedError) as info:
        on_redis.check(ALICE)
    assert info.value.retry_after == 900
    assert 899_000 < fake_client.pttl(REDIS_ALICE) <= 900_000
    bob = user_key("acme", "bob")
    fake_client.set("tenantauth:fail:" + bob, 1)
    on_redis.record_failure([bob])
    assert 59_000 < fake_client.pttl("tenantauth:fail:" + bob) <= 60_000


def test_redis_malformed_counter_is_ignored(
    on_redis: RedisFailureLimiter,
    fake_client: fakeredis.FakeRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A counter that is not a number does not lock; a warning is logged without the key."""
    fake_client.set(REDIS_ALICE, "garbage", ex=60)
    with caplog.at_level(logging.WARNING, logger="tenantauth.cache.limits_redis"):
        on_redis.check(ALICE)
    assert "malformed failure counter" in caplog.text
    assert ALICE[0] not in caplog.text


def test_redis_check_is_one_round_trip_of_gets(
    on_redis: RedisFailureLimiter,
    fake_client: fakeredis.FakeRedis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """check costs one round trip of GETs while no key is at its threshold: one pipeline for
    two keys, one direct GET for one key."""
    pipelines: list[list[str]] = []
    direct: list[object] = []
    real_pipeline = fake_client.pipeline

    def pipeline(**kw: object) -> object:
        pipe = real_pipeline(**kw)
        execute = pipe.execute

        def recorded() -> object:
            pipelines.append([command[0][0] for command in pipe.command_stack])
            return execute()

        pipe.execute = recorded  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(fake_client, "pipeline", pipeline)
    monkeypatch.setattr(fake_client, "execute_command", lambda *a, **kw: direct.append(a))
    on_redis.check(failure_keys("acme", "alice", IP))
    assert pipelines == [["GET", "GET"]]
    assert direct == []
    on_redis.check(ALICE)
    assert len(pipelines) == 1
    assert [command[0] for command in direct] == ["GET"]


@pytest.mark.parametrize("operation", ["check", "record_failure", "reset"])
def test_redis_outage_is_cache_unavailable(
    on_redis: RedisFailureLimiter, fake_server: fakeredis.FakeServer, operation: str
) -> None:
    """Any Redis failure surfaces as CacheUnavailableError (callers fail closed)."""
    fake_server.connected = False
    with pytest.raises(CacheUnavailableError):
        getattr(on_redis, operation)(failure_keys("acme", "alice", IP))
