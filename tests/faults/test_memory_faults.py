"""Fault scenarios of verifying from memory (issue 14; docs/design.md, "Verifying from
memory"): the protocol's own faults, on real gunicorn servers with
``TENANTAUTH_VERIFY_MEMORY=true``, real PostgreSQL and the suite's private Redis.

- M1: a worker stopped with SIGSTOP (it neither acknowledges nor renews) while it holds the
  tenant: the rotation waits out its lease (the bound: L = 2 s, plus polls), and no worker
  accepts the old token afterwards, the stopped one included once it resumes.
- M2: a replica partitioned from Redis (its Redis traffic black-holed by a proxy) while it
  holds the tenant: a rotation through the other replica returns within the bound, and the
  partitioned one rejects the old token (its memory is no longer trusted; it reads the
  database), then recovers when the partition heals.
- M3: one replica's Redis traffic delayed (acknowledgements arrive late): the rotation waits
  for them; the old token is rejected there when it returns.

Lost stream entries, a listener that stops, and each protocol step's necessity are in
tests/contract/test_memory_race.py, where the schedule can be forced.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    Admin,
    Launch,
    Record,
    Server,
    call,
    production_environ,
    served_by,
    stop_process,
)
from tests.faults.harness import PrivateRedis, ScenarioMetrics, TcpProxy, metric
from tests.faults.race_support import mint, rotate

pytestmark = pytest.mark.faults

#: The lease (MemoryPolicy.lease_seconds) and the slack we allow on a shared 2-core machine.
LEASE = 2.0
SLACK = 3.0
WARM_SECONDS = 30.0
TENANT = "memory-faults"
Record_ = Callable[[ScenarioMetrics], None]


def _env(tmp_path: Path, pg_url: str, redis_url: str, name: str) -> dict[str, str]:
    env = production_environ(pg_url, redis_url, tmp_path / f"{name}.access.log")
    env["TENANTAUTH_VERIFY_MEMORY"] = "true"
    env["TENANTAUTH_REDIS_TIMEOUT"] = "0.2"
    return env


@pytest.fixture
def redis_proxy(private_redis: PrivateRedis) -> Iterator[TcpProxy]:
    """A proxy in front of the private Redis, for one replica's traffic only."""
    proxy = TcpProxy("127.0.0.1", private_redis.port).start()
    yield proxy
    proxy.close()


def _verify(server: Server, token: str, label: str) -> Record:
    start = time.monotonic_ns()
    try:
        status = call(server.port, "GET", "/v1/verify", token=token, probe=label).status
    except OSError:
        status = 0
    return Record(0, label, start, time.monotonic_ns(), status)


MEMORY_READS = 'tenantauth_cache_reads_total{outcome="memory"}'


def _hold_everywhere(server: Server, token: str) -> None:
    """Verify until every worker answered ``token`` from memory several times (each worker's
    first verifications start its listener and fill its memory)."""
    logs = [server.access_log] if server.access_log else []
    before = metric(server, MEMORY_READS)
    deadline = time.monotonic() + WARM_SECONDS
    while True:
        record = _verify(server, token, "warm")
        assert record.status == 200, record
        everyone = served_by(logs, "warm", 200) >= set(server.pids)
        if everyone and metric(server, MEMORY_READS) - before >= 10 * len(server.pids):
            return
        assert time.monotonic() < deadline, "the workers never verified from memory"
        time.sleep(0.005)


def _check_rejected(server: Server, token: str, label: str, times: int, m: ScenarioMetrics) -> None:
    records = [_verify(server, token, label) for _ in range(times)]
    m.add(records, valid=set(), revoked={label})


def _bounded(elapsed_s: float) -> None:
    assert elapsed_s <= LEASE + SLACK, f"a change took {elapsed_s:.2f} s: past the lease bound"


def test_m1_stopped_worker_is_waited_out(
    launch: Launch,
    tmp_path: Path,
    pg_url: str,
    private_redis: PrivateRedis,
    fault_metrics: Record_,
) -> None:
    """M1: SIGSTOP a worker that holds the tenant; rotate; the old token is dead everywhere."""
    server = launch("m1", _env(tmp_path, pg_url, private_redis.url, "m1"))
    admin = Admin(server.port)
    admin.create_tenant(TENANT)
    old = mint(server.port, TENANT)
    _hold_everywhere(server, old)
    victim = min(server.pids)
    m = ScenarioMetrics("M1 stopped worker (SIGSTOP)")
    stop_process(victim)
    try:
        change = rotate(server.port, TENANT)
        elapsed = (change.returned - change.sent) / 1e9
        m.note = f"rotate took {elapsed * 1000:.0f} ms with a worker stopped"
        assert change.reply.status == 200, change.reply
        _check_rejected(server, old, "old-while-stopped", 60, m)
    finally:
        os.kill(victim, signal.SIGCONT)
    logs = [server.access_log] if server.access_log else []
    deadline = time.monotonic() + WARM_SECONDS
    while victim not in served_by(logs, "old-after-resume", 401):
        _check_rejected(server, old, "old-after-resume", 10, m)
        assert time.monotonic() < deadline, "the resumed worker never answered"
    new = mint(server.port, TENANT)
    m.add([_verify(server, new, "new") for _ in range(30)], valid={"new"}, revoked=set())
    fault_metrics(m)
    assert m.wrong_accepts == 0 and m.wrong_rejects == 0 and m.errors_5xx == 0
    _bounded(elapsed)


@pytest.fixture
def memory_replicas(
    launch: Launch, tmp_path: Path, pg_url: str, private_redis: PrivateRedis, redis_proxy: TcpProxy
) -> tuple[Server, Server, TcpProxy]:
    """Replica A on the private Redis, replica B on it through ``redis_proxy``, and the
    proxy; both verify from memory, share the database, and hold nothing yet."""
    a = launch("ma", _env(tmp_path, pg_url, private_redis.url, "ma"))
    b = launch("mb", _env(tmp_path, pg_url, f"redis://127.0.0.1:{redis_proxy.port}/0", "mb"))
    return a, b, redis_proxy


def test_m2_partitioned_replica_stops_trusting_memory(
    memory_replicas: tuple[Server, Server, TcpProxy], fault_metrics: Record_
) -> None:
    """M2: replica B loses Redis while it holds the tenant; a rotation through A returns
    within the bound, B rejects the old token (from the database), and recovers."""
    a, b, redis_proxy = memory_replicas
    Admin(a.port).create_tenant(TENANT)
    old = mint(a.port, TENANT)
    _hold_everywhere(a, old)
    _hold_everywhere(b, old)
    m = ScenarioMetrics("M2 replica partitioned from Redis")
    redis_proxy.blackhole()
    try:
        change = rotate(a.port, TENANT)
        elapsed = (change.returned - change.sent) / 1e9
        assert change.reply.status == 200, change.reply
        _check_rejected(b, old, "old-on-partitioned", 30, m)
        _check_rejected(a, old, "old-on-a", 30, m)
        new = mint(a.port, TENANT)
        m.add([_verify(b, new, "new-on-b") for _ in range(20)], valid={"new-on-b"}, revoked=set())
    finally:
        redis_proxy.restore()
    healed = time.monotonic()
    again = rotate(a.port, TENANT)  # after the partition: B registers again and is waited for
    assert again.reply.status == 200, again.reply
    _check_rejected(b, new, "new-after-heal", 30, m)
    m.note = (
        f"rotate {elapsed * 1000:.0f} ms during the partition, "
        f"{(again.returned - again.sent) / 1e6:.0f} ms after healing"
    )
    m.recover_s = time.monotonic() - healed
    fault_metrics(m)
    assert m.wrong_accepts == 0 and m.wrong_rejects == 0 and m.errors_5xx == 0
    _bounded(elapsed)


def test_m3_delayed_acknowledgements_are_waited_for(
    memory_replicas: tuple[Server, Server, TcpProxy], fault_metrics: Record_
) -> None:
    """M3: B's Redis traffic is delayed 150 ms each way; rotations through A wait for B's
    late acknowledgements, and B rejects the old token as soon as each returns."""
    a, b, redis_proxy = memory_replicas
    Admin(a.port).create_tenant(TENANT)
    m = ScenarioMetrics("M3 one replica's Redis delayed 150 ms")
    took = []
    for _ in range(3):
        old = mint(a.port, TENANT)
        redis_proxy.restore()
        _hold_everywhere(b, old)
        redis_proxy.delay(150)
        change = rotate(a.port, TENANT)
        assert change.reply.status == 200, change.reply
        took.append((change.returned - change.sent) / 1e9)
        _check_rejected(b, old, "old-on-delayed", 10, m)
    redis_proxy.restore()
    m.note = "rotate took " + ", ".join(f"{t * 1000:.0f}" for t in took) + " ms"
    fault_metrics(m)
    assert m.wrong_accepts == 0 and m.errors_5xx == 0
    for t in took:
        _bounded(t)
