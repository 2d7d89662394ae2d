"""Fault scenarios 7, 8, 9 and 13 of issue 4: rotations racing cache fills under load, Redis
connections killed during rotations, concurrent rotations, and rolling restarts.

Real gunicorn (3 workers; two separate servers for the rolling restart), real PostgreSQL and
the suite's private Redis. Load comes from client processes (``Fleet``) or client threads
(``FailoverLoad``); every request is a ``Record`` with its send start and end on
CLOCK_MONOTONIC (shared by all processes), so "accepted after the rotate returned" is decided
by timestamps, as in tests/e2e. Scenario 12 (clocks) is tests/unit/test_clock.py.

Soak mode: ``make test-soak`` (``FAULTS_SOAK=1`` over this file) runs every scenario here with
ten times the rounds and durations: 8 to 13 minutes on a 2-CPU machine instead of about 1.5
(docs/reliability.md, "Soak mode").
Every scenario records its metrics row before asserting, so failed scenarios show in the table.
"""

from __future__ import annotations

import dataclasses
import random
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tenantauth.cache import cache_key
from tests.e2e.harness import (
    Admin,
    Fleet,
    Launch,
    Record,
    Server,
    call,
    children_of,
    production_environ,
    served_by,
    server_errors,
    wait_every_worker_answered,
    wait_ready,
)
from tests.faults.conftest import StartServer
from tests.faults.harness import PrivateRedis, ScenarioMetrics, TcpProxy, percentile, wait_for
from tests.faults.race_support import (
    FailoverLoad,
    RedisMonitor,
    Timed,
    count_races,
    mint,
    overlaps_window,
    redis_client_addrs,
    rotate,
    rotate_importing,
    rounds,
    scaled,
    sign_like,
    timed_admin,
)
from tests.support import ADMIN_TOKEN

pytestmark = pytest.mark.faults

CLIENTS = 4
SEED = 20261128
RECOVER_SECONDS = 15.0
#: S7 stops its rounds after this many failed rotations (the scenario has failed by then).
MAX_PROBLEMS = 20
#: Bound on a scenario's load phase: the clients stop by themselves after this.
FLEET_SECONDS = scaled(120.0)

Record_ = Callable[[ScenarioMetrics], None]


def _entry(tenant_id: str) -> str:
    return cache_key(tenant_id, "entry")


def _by_label(records: list[Record]) -> dict[str, list[Record]]:
    found: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        found[r.label].append(r)
    return found


class Rounds:
    """The verdicts of rotation rounds: token ``label`` was valid until its rotation was sent
    (``sent``) and revoked once it returned (``returned``)."""

    def __init__(self) -> None:
        """No rounds yet."""
        self.events: list[tuple[str, int, int]] = []

    def add(self, label: str, timed: Timed) -> None:
        """Token ``label`` was revoked by the call ``timed``."""
        self.events.append((label, timed.sent, timed.returned))

    def judge(self, records: list[Record], m: ScenarioMetrics) -> tuple[int, int, list[Record]]:
        """Count wrong accepts (200 for a request sent after the rotation returned) and wrong
        rejects (401 for one answered before the rotation was sent) into ``m``.

        Returns (requests in flight across a rotation, acceptances before, the wrong accepts).
        """
        labels = _by_label(records)
        in_flight = accepted_before = 0
        late: list[Record] = []
        for label, sent, returned in self.events:
            for r in labels.get(label, []):
                if r.start > returned and r.status == 200:
                    late.append(r)
                elif r.done < sent:
                    accepted_before += r.status == 200
                    m.wrong_rejects += r.status == 401
                elif r.start <= returned:
                    in_flight += 1
        m.wrong_accepts += len(late)
        return in_flight, accepted_before, late


def _assert_load_lasted(records: list[Record], until: int) -> None:
    """The load clients were still sending after ``until`` (monotonic ns): they stop by
    themselves after ``FLEET_SECONDS``, and rounds after that would be judged on nothing."""
    assert records, "the load clients sent nothing"
    assert records[-1].start > until, (
        f"the load clients stopped before the last round (FLEET_SECONDS={FLEET_SECONDS:.0f})"
    )


def _assert_clean(m: ScenarioMetrics, servers: list[Server]) -> None:
    assert m.wrong_accepts == 0, "a revoked token was accepted after its rotation returned"
    assert m.wrong_rejects == 0, "a valid token was rejected"
    assert m.errors_5xx == 0, server_errors(servers)
    assert m.conn_errors == 0, "requests got no HTTP answer"


# --------------------------------------------------------------------------- scenario 7


@pytest.fixture
def direct_server(
    launch: Launch, tmp_path: Path, pg_url: str, private_redis: PrivateRedis
) -> Server:
    """A production-mode server (3 workers) on the private Redis and on PostgreSQL *directly*
    (no proxy: these scenarios inject no database fault, and the proxy's relay threads would
    slow every rotation down)."""
    server = launch("direct", _server_env(tmp_path, pg_url, private_redis, "direct"))
    wait_every_worker_answered(server, timeout=RECOVER_SECONDS)
    return server


#: The admin rate limit (default 1200 requests a minute per credential) is not under test
#: here, and the soak's 10000 rotations of S7 (and 2 x 500 rotate+mint of S9) exceed it:
#: every admin call after the 1200th of a minute would be a 429, not a rotation.
ADMIN_RATE_LIMIT = "1000000"


def _server_env(tmp_path: Path, pg_url: str, redis: PrivateRedis, name: str) -> dict[str, str]:
    env = production_environ(pg_url, redis.url, tmp_path / f"{name}.access.log")
    env["TENANTAUTH_REDIS_TIMEOUT"] = "0.2"
    env["TENANTAUTH_ADMIN_RATE_LIMIT"] = ADMIN_RATE_LIMIT
    env["TENANTAUTH_ADMIN_IP_RATE_LIMIT"] = ADMIN_RATE_LIMIT
    return env


@dataclass
class RaceRun:
    """What the rotation rounds of scenario 7 produced."""

    verdicts: Rounds = field(default_factory=Rounds)
    returned_wall: list[float] = field(default_factory=list)
    rotate_ms: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _race_rounds(
    server: Server, tenant: str, fleet: Fleet, client: redis.Redis, count: int
) -> RaceRun:
    """``count`` rounds of: delete the entry, wait 0-2 ms, rotate (half the rounds deleting
    the entry over and over meanwhile), then hand the clients a token of the new secret and
    keep the old one as their now-and-then token."""
    rng, run = random.Random(SEED), RaceRun()
    template = mint(server.port, tenant)
    token = template
    fleet.token("v0", token)
    time.sleep(0.3)
    for i in range(count):
        client.delete(_entry(tenant))
        time.sleep(rng.uniform(0, 0.002))
        timed, secret = _rotate_while_deleting(server, tenant, client, rng.random() < 0.5)
        if timed.reply.status != 200:
            run.problems.append(f"round {i}: rotate answered {timed.reply.status}")
            if len(run.problems) >= MAX_PROBLEMS:
                break  # the scenario has failed; more rounds would only take longer
            continue
        run.verdicts.add(f"v{i}", timed)
        run.returned_wall.append(timed.returned_wall)
        run.rotate_ms.append((timed.returned - timed.sent) / 1e6)
        new = sign_like(template, secret, int(timed.reply.json()["key_version"]))
        fleet.token(f"v{i + 1}", new)
        fleet.bystander(f"v{i}", token)  # the old token, now and then, from here on
        token = new
    time.sleep(0.3)
    return run


def test_s7_rotations_race_cache_fills_under_load(
    direct_server: Server, private_redis: PrivateRedis, tmp_path: Path, fault_metrics: Record_
) -> None:
    """S7: 1000 rotations of one tenant while client processes hammer its current and previous
    tokens, the cache entry deleted right before each rotation (and, in half the rounds, over
    and over during it) to force fills: zero acceptances after a rotation returned. The
    MONITOR stream counts the fills that really raced a rotation (old generation, after the
    fence). Rotations import a secret of the test's own, so the new token is signed here
    instead of costing an issue call per round."""
    server, tenant = direct_server, "race7"
    Admin(server.port).create_tenant(tenant)
    m = ScenarioMetrics(f"S7 {rounds(1000)} rotations racing fills")
    begun = time.monotonic()
    with (
        Fleet(tmp_path, [server.port], CLIENTS, max_seconds=FLEET_SECONDS, extra_every=3) as fleet,
        RedisMonitor(private_redis.port) as monitor,
        private_redis.client() as client,
    ):
        run = _race_rounds(server, tenant, fleet, client, rounds(1000))
        records = fleet.stop()
    races = count_races(monitor.calls, tenant, run.returned_wall)
    m.add(records, valid=set(), revoked=set())
    in_flight, before, late = run.verdicts.judge(records, m)
    m.note = (
        f"{len(run.verdicts.events)} rotations in {time.monotonic() - begun:.0f} s (rotate p50 "
        f"{_median(run.rotate_ms):.0f} ms); fills {races.fills}, stale fills after the fence "
        f"{races.stale_after_fence} (after the rotate returned {races.stale_after_return}); "
        f"{in_flight} requests in flight across a rotation"
    )
    fault_metrics(m)
    print(m.note)
    assert not run.problems, run.problems[:5]
    _assert_clean(m, [server])
    _assert_load_lasted(records, run.verdicts.events[-1][2])
    assert not late
    assert races.fences == len(run.verdicts.events), "MONITOR missed rotations: counts unreliable"
    assert races.stale_after_fence > 0, "no fill raced a rotation: the test proved nothing"
    assert before > 0


def _median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


def _rotate_while_deleting(
    server: Server, tenant: str, client: redis.Redis, keep_deleting: bool
) -> tuple[Timed, bytes]:
    """Rotate to a new imported secret; if ``keep_deleting``, delete the tenant's entry in a
    loop during the call, so more verifications miss (and fill) while the rotation runs."""
    if not keep_deleting:
        return rotate_importing(server.port, tenant)
    done = threading.Event()

    def delete() -> None:
        while not done.is_set():
            client.delete(_entry(tenant))
            time.sleep(0.0005)

    deleter = threading.Thread(target=delete, daemon=True)
    deleter.start()
    try:
        return rotate_importing(server.port, tenant)
    finally:
        done.set()
        deleter.join(5)


# --------------------------------------------------------------------------- scenario 8


def _kill_connections(client: redis.Redis, port: int, victim: int, everyone: bool) -> int:
    """Kill the connections of worker ``victim`` to the private Redis on ``port`` (or those of
    every normal client but ``client``'s own); return how many Redis closed."""
    if everyone:
        return int(client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
    killed = 0
    for addr in redis_client_addrs(victim, port):
        killed += int(client.execute_command("CLIENT", "KILL", "ADDR", addr))
    return killed


def _rotate_until_done(server: Server, tenant: str, statuses: Counter[int]) -> Timed:
    """Rotate, retrying a 503, and count every status. A 503 is either a refused rotation
    (its fence could not reach Redis: nothing committed, the old token still valid) or an
    unconfirmed one (``change_unconfirmed``: committed, but the seal after the commit could
    not reach Redis, so the old token may already be rejected). The returned call is the
    successful one, with ``sent`` moved back to the first attempt that may have committed."""
    first_sent: int | None = None
    for _ in range(20):
        timed = rotate(server.port, tenant)
        statuses[timed.reply.status] += 1
        if timed.reply.status == 200:
            return dataclasses.replace(timed, sent=first_sent or timed.sent)
        if first_sent is None and b"change_unconfirmed" in timed.reply.body:
            first_sent = timed.sent
        time.sleep(0.05)
    pytest.fail(f"rotation never succeeded: {statuses}")


PROBE_TENANT = "kill8-probe"


def test_s8_redis_connections_killed_during_rotations(
    direct_server: Server, private_redis: PrivateRedis, tmp_path: Path, fault_metrics: Record_
) -> None:
    """S8: in each of 30 rounds, one worker's Redis connections (every fourth round: every
    worker's) are killed with CLIENT KILL before, during or right after a rotation: no worker
    accepts the old token after the rotate returned, and every worker reconnects by itself."""
    server, tenant = direct_server, "kill8"
    Admin(server.port).create_tenant(tenant)
    rng = random.Random(SEED + 8)
    m = ScenarioMetrics(f"S8 {rounds(30)} rotations, redis conns killed")
    verdicts, statuses, killed, last_kill = Rounds(), Counter[int](), 0, 0.0
    token = mint(server.port, tenant)
    pids = sorted(server.pids)
    with (
        Fleet(tmp_path, [server.port], CLIENTS, max_seconds=FLEET_SECONDS, extra_every=3) as fleet,
        private_redis.client() as client,
        ThreadPoolExecutor(1) as pool,
    ):
        fleet.token("v0", token)
        time.sleep(0.5)
        for i in range(rounds(30)):
            victim, everyone = pids[i % len(pids)], i % 4 == 3
            when = rng.choice(["before", "during", "after"])
            if when == "before":
                killed += _kill_connections(client, private_redis.port, victim, everyone)
            elif when == "during":
                pause = rng.uniform(0, 0.004)
                kill = pool.submit(
                    _delayed_kill, client, private_redis.port, victim, everyone, pause
                )
            timed = _rotate_until_done(server, tenant, statuses)
            if when == "during":
                killed += kill.result()
            elif when == "after":
                killed += _kill_connections(client, private_redis.port, victim, everyone)
            last_kill = time.monotonic()
            verdicts.add(f"v{i}", timed)
            new = mint(server.port, tenant)
            fleet.token(f"v{i + 1}", new)
            fleet.bystander(f"v{i}", token)
            token = new
            time.sleep(rng.uniform(0.05, 0.15))
        reconnected = wait_for(
            lambda: all(redis_client_addrs(pid, private_redis.port) for pid in pids),
            RECOVER_SECONDS,
        )
        m.recover_s = None if reconnected is None else time.monotonic() - last_kill
        client.delete(_entry(tenant))  # the servers write to Redis again
        # A tenant created only now: no worker holds it (warming ran when each registered),
        # so its first verification must fill Redis even on workers that answer ``tenant``
        # from memory (TEST_VERIFY_MEMORY=true).
        Admin(server.port).create_tenant(PROBE_TENANT)
        probe_token = mint(server.port, PROBE_TENANT)

        def refilled_now() -> bool:
            # A probe each poll: one that meets a worker's pooled connection the kills broke
            # is answered from PostgreSQL (or 503) without a fill, and says nothing yet.
            call(server.port, "GET", "/v1/verify", token=probe_token, probe="refill")
            return bool(
                private_redis.exists(_entry(tenant)) or private_redis.exists(_entry(PROBE_TENANT))
            )

        refilled = wait_for(refilled_now, RECOVER_SECONDS)
        time.sleep(0.5)
        records = fleet.stop()
    m.add(records, valid=set(), revoked=set())
    in_flight, before, late = verdicts.judge(records, m)
    m.note = (
        f"{killed} connections killed; rotations {dict(statuses)}; "
        f"{in_flight} requests in flight across a rotation"
    )
    fault_metrics(m)
    print(m.note)
    _assert_clean(m, [server])
    _assert_load_lasted(records, verdicts.events[-1][2])
    assert not late
    assert before > 0
    assert killed >= rounds(30), "the kills did not hit connections: the test proved nothing"
    assert m.recover_s is not None, "a worker has no Redis connection after the kills"
    assert refilled is not None, "the servers did not write to Redis again"
    assert server.proc.poll() is None and children_of(server.proc.pid) == set(server.pids)


def _delayed_kill(client: redis.Redis, port: int, victim: int, everyone: bool, pause: float) -> int:
    time.sleep(pause)
    return _kill_connections(client, port, victim, everyone)


# --------------------------------------------------------------------------- scenario 9


def _rotate_and_mint(port: int, tenant: str, count: int) -> list[tuple[int, Timed, str, int]]:
    """One admin: ``count`` times rotate, then mint. Returns (key_version, the rotate call,
    the token, when its mint returned)."""
    done = []
    for _ in range(count):
        timed = rotate(port, tenant)
        assert timed.reply.status == 200, timed.reply
        token = mint(port, tenant)
        done.append((int(timed.reply.json()["key_version"]), timed, token, time.monotonic_ns()))
    return done


def test_s9_concurrent_rotations_and_a_busy_bystander(
    direct_server: Server, tmp_path: Path, fault_metrics: Record_
) -> None:
    """S9: two admins rotate tenant A 2 x 50 times at once while client processes hammer
    tenant B: versions are distinct and each admin's are increasing (serialised), only the
    last secret verifies, and B sees no wrong 401 and no 5xx (its p99 next to a baseline)."""
    server, port = direct_server, direct_server.port
    admin = Admin(port)
    admin.create_tenant("a9")
    admin.create_tenant("b9")
    first_a, b_token = mint(port, "a9"), mint(port, "b9")
    start_version = int(
        call(port, "GET", "/v1/admin/tenants/a9", token=admin.token).json()["key_version"]
    )
    per_admin = rounds(50)
    with Fleet(tmp_path, [port], CLIENTS, max_seconds=FLEET_SECONDS, extra_every=5) as fleet:
        fleet.token("b", b_token)
        fleet.bystander("a-first", first_a)
        time.sleep(0.3)
        baseline_from = time.monotonic_ns()
        time.sleep(scaled(2.0))
        rotating_from = time.monotonic_ns()
        with ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(_rotate_and_mint, port, "a9", per_admin) for _ in range(2)]
            results = [run.result() for run in runs]
        rotating_to = time.monotonic_ns()
        time.sleep(0.3)
        records = fleet.stop()
    m = ScenarioMetrics(f"S9 2 admins x {per_admin} rotations; B under load")
    b_records = [r for r in records if r.label == "b"]
    m.add(records, valid={"b"}, revoked=set())
    first_rotation = min(t.returned for run in results for _, t, _, _ in run)
    m.wrong_accepts = sum(
        r.status == 200 for r in records if r.label == "a-first" and r.start > first_rotation
    )
    base = _p99([r for r in b_records if baseline_from <= r.start < rotating_from])
    during = _p99([r for r in b_records if rotating_from <= r.start < rotating_to])
    versions = [v for run in results for v, _, _, _ in run]
    stale = _stale_tokens_accepted(port, results)
    m.note = (
        f"B p99 {base:.1f} ms baseline, {during:.1f} ms while A rotated "
        f"({(rotating_to - rotating_from) / 1e9:.1f} s); A versions "
        f"{min(versions)}..{max(versions)}; {stale[1]} earlier-secret tokens checked"
    )
    fault_metrics(m)
    print(m.note)
    _assert_clean(m, [server])
    _assert_load_lasted(records, rotating_to)
    assert sorted(versions) == list(range(start_version + 1, start_version + 2 * per_admin + 1))
    for run in results:  # each admin saw its own rotations in increasing order
        mine = [v for v, _, _, _ in run]
        assert mine == sorted(mine)
    assert stale[0] == [], "a token of an earlier secret still verifies"
    final = mint(port, "a9")
    assert {_verify(port, final) for _ in range(6)} == {200}, "the last secret does not verify"


def _verify(port: int, token: str) -> int:
    return call(port, "GET", "/v1/verify", token=token, probe="check").status


def _stale_tokens_accepted(
    port: int, results: list[list[tuple[int, Timed, str, int]]]
) -> tuple[list[int], int]:
    """Verify every token minted before the last rotation was sent (so under an earlier
    secret); return (the statuses that were not 401, how many tokens were checked)."""
    last = max((t for run in results for _, t, _, _ in run), key=lambda t: t.returned)
    old = [token for run in results for _, _, token, minted in run if minted < last.sent]
    wrong = [status for status in (_verify(port, token) for token in old) if status != 401]
    return wrong, len(old)


def _p99(records: list[Record]) -> float:
    return percentile(sorted((r.done - r.start) / 1e6 for r in records), 99)


# --------------------------------------------------------------------------- scenario 13


def _drain_and_restart(
    launch: Launch, server: Server, env: dict[str, str], *, load: FailoverLoad, i: int
) -> tuple[Server, int, int, float]:
    """SIGTERM ``server``'s master while ``load`` still routes to it, wait for it to exit,
    start a new one on the same port and route to it again once every worker answered.
    Returns (the new server, SIGTERM time, ready time, seconds the drain took)."""
    term_at = time.monotonic_ns()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(30)
    drained = (time.monotonic_ns() - term_at) / 1e9
    load.routed[i] = False
    new = launch(f"{server.name}-restarted", env, port=server.port)
    wait_every_worker_answered(new, timeout=RECOVER_SECONDS)
    load.routed[i] = True
    return new, term_at, time.monotonic_ns(), drained


def test_s13_rolling_restart_of_two_servers_under_load(
    launch: Launch,
    tmp_path: Path,
    pg_url: str,
    private_redis: PrivateRedis,
    fault_metrics: Record_,
) -> None:
    """S13: two servers (3 workers each) share PostgreSQL and Redis; each is restarted in turn
    with SIGTERM while client threads send to both and retry a failed connection on the other
    (a restarted server gets traffic again once every worker answered, as behind a load
    balancer's readiness check): no 5xx, every request answered, connection errors only while
    a server drains (an attempt that meets a drain, SIGTERM to the new server's readiness:
    one sent a moment before the SIGTERM fails when granian closes its kept-alive
    connection, where gunicorn answered it with ``Connection: close``; docs/design.md)."""
    envs = [_server_env(tmp_path, pg_url, private_redis, f"s{i}") for i in range(2)]
    servers = [launch(f"s{i}", envs[i], ready=False) for i in range(2)]
    for server in servers:
        wait_ready(server)
        wait_every_worker_answered(server, timeout=RECOVER_SECONDS)
    Admin(servers[0].port).create_tenant("roll13")
    token = mint(servers[1].port, "roll13")
    windows: list[tuple[int, int]] = []
    drains: list[float] = []
    with FailoverLoad([s.port for s in servers], token, threads=4) as load:
        time.sleep(scaled(1.0))
        for _cycle in range(rounds(1)):
            for i in range(2):
                servers[i], term_at, ready_at, drained = _drain_and_restart(
                    launch, servers[i], envs[i], load=load, i=i
                )
                windows.append((term_at, ready_at))
                drains.append(drained)
                time.sleep(1.0)
    m = ScenarioMetrics(f"S13 rolling restart x{rounds(1)}, 2 servers")
    m.add(load.records, valid={"valid"}, revoked=set())
    attempts_failed = [a for a in load.attempts if a.status == 0]
    outside = [a for a in attempts_failed if not overlaps_window(a.start, a.done, windows)]
    raced = [a for a in attempts_failed if any(a.start < term <= a.done for term, _ in windows)]
    m.recover_s = max((ready - term) / 1e9 for term, ready in windows)
    slowest_error = max(((a.done - a.start) / 1e6 for a in attempts_failed), default=0.0)
    m.note = (
        f"{len(attempts_failed)} connection errors (slowest {slowest_error:.0f} ms) retried on "
        f"the other server ({len(raced)} sent just before a SIGTERM), {len(outside)} outside a "
        "drain; drains "
        f"{[round(d, 2) for d in drains]} s; recover = SIGTERM to restarted server ready"
    )
    fault_metrics(m)
    print(m.note)
    assert len(load.records) > 100
    assert m.conn_errors == 0, "a request was answered by neither server"
    assert m.errors_5xx == 0 and m.wrong_rejects == 0, Counter(r.status for r in load.records)
    assert outside == [], "connection errors while no server was draining"
    assert not server_errors(servers)


def _every_worker_answered(server: Server, method: str, path: str) -> bool:
    """Call ``path`` on new connections until every worker answered it with 200 (bounded)."""
    logs = [server.access_log] if server.access_log else []
    deadline = time.monotonic() + RECOVER_SECONDS
    while time.monotonic() < deadline:
        call(server.port, method, path, token=ADMIN_TOKEN, probe="warm")
        if set(server.pids) <= served_by(logs, "warm", 200):
            return True
    return False


def test_s13_sigterm_completes_in_flight_requests(
    start_fault_server: StartServer, pg_proxy: TcpProxy, tmp_path: Path, fault_metrics: Record_
) -> None:
    """S13: SIGTERM to a server under load while six slow requests (each waiting >= 0.5 s on a
    delayed PostgreSQL) are inside it: all six are answered 200 and the server exits by itself
    within gunicorn's graceful_timeout. Verifications whose connection a worker had not yet
    accepted at SIGTERM can be reset (gunicorn closes its accept queue): counted, not failed."""
    # Four connections per worker (one per thread), opened before the proxy is slowed: a new
    # connection's handshake through it would outlast the 2 s pool timeout (a 503, not a drop).
    server = start_fault_server(TENANTAUTH_DB_POOL_MIN_SIZE="4")
    Admin(server.port).create_tenant("term13")
    token = mint(server.port, "term13")
    m = ScenarioMetrics("S13 SIGTERM, in-flight requests")
    # Every worker opens its database connections now: through the delayed proxy below, a
    # new connection's handshake alone would outlast the 2 s pool timeout (a 503, not a drop).
    assert _every_worker_answered(server, "GET", "/v1/admin/tenants/term13")
    with Fleet(tmp_path, [server.port], CLIENTS, max_seconds=FLEET_SECONDS) as fleet:
        fleet.token("valid", token)
        time.sleep(0.5)
        pg_proxy.delay(250)  # each round trip to PostgreSQL takes >= 0.5 s from now on
        with ThreadPoolExecutor(6) as pool:
            slow = [
                pool.submit(timed_admin, server.port, "GET", "/v1/admin/tenants/term13")
                for _ in range(6)
            ]
            time.sleep(0.3)  # they are inside the workers now, waiting on the database
            term_at = time.monotonic_ns()
            server.proc.send_signal(signal.SIGTERM)
            answered = [s.result() for s in slow]
        server.proc.wait(30)
        drained = (time.monotonic_ns() - term_at) / 1e9
        pg_proxy.restore()
        records = fleet.stop()
    slow_records = [Record(-1, "slow", a.sent, a.returned, a.reply.status) for a in answered]
    # Refusals once the server stopped listening are expected, and the clients retry them in
    # a tight loop: they are counted in the note, not as requests.
    refused = [r for r in records if r.status == 0 and r.start >= term_at]
    kept = [r for r in records if not (r.status == 0 and r.start >= term_at)]
    m.add([*kept, *slow_records], valid={"valid", "slow"}, revoked=set())
    m.recover_s = drained
    m.note = (
        f"slow {[r.status for r in slow_records]}; drain {drained:.2f} s; conn errors: "
        f"{m.conn_errors} sent before SIGTERM (not yet accepted: reset), {len(refused)} refused "
        f"after; recover = SIGTERM to exit"
    )
    fault_metrics(m)
    print(m.note)
    assert [r.status for r in slow_records] == [200] * 6, "an in-flight request was dropped"
    assert all(r.done > term_at for r in slow_records), "not in flight at SIGTERM"
    assert m.errors_5xx == 0 and m.wrong_rejects == 0
    assert server.proc.returncode == 0
