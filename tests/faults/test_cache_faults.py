"""Cache fault scenarios of issue 4 (5, 6, 10, 11) against real gunicorn (3 workers), real
PostgreSQL behind our proxy and a private Redis: Redis restarted empty under load, Redis
restored from a pre-rotation snapshot, a cold-cache stampede, a flood of unknown tenant ids.

Database lookups are counted from the server's own DEBUG line ``storage load tenant=<id>
pid=<pid>`` (``LoadLog``). Every scenario records its metrics before asserting, so the table
at the end of the session shows failed scenarios too. See docs/reliability.md.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from tenantauth.cache import cache_key
from tenantauth.crypto import jwt
from tests.e2e.harness import Admin, Record, Server, call, children_of, served_by
from tests.faults.conftest import COUNT_LOADS, StartServer
from tests.faults.harness import (
    WARMINGS,
    LoadLog,
    PrivateRedis,
    ScenarioMetrics,
    TcpProxy,
    metric,
    percentile,
    until_every_worker,
    wait_for,
)
from tests.faults.loadgen import Load, Shot, burst

pytestmark = pytest.mark.faults

Record_ = Callable[[ScenarioMetrics], None]
RECOVER_SECONDS = 15.0
#: Single-flight (docs/design.md) lets a process run one read of a tenant and queue at most
#: one more for requests that arrived while the first ran (they may not join a read that
#: started before them). Two per tenant per process is the design; one more covers a request
#: that missed the cache just before the first fill landed and reached the flight just after
#: the queued read started. Without single-flight a stampede costs one read per thread.
LOADS_PER_TENANT_PER_PROCESS = 3
WARMED_TENANTS = "tenantauth_memory_warmed_tenants_total"
#: Server threads per worker in the stampede scenarios: enough concurrent misses per process
#: that a missing single-flight shows (up to 16 reads per process instead of <= 3).
STAMPEDE_THREADS = "16"


def _entry(tenant_id: str) -> str:
    return cache_key(tenant_id, "entry")


def _tenant(admin: Admin, tenant_id: str, *subs: str) -> list[str]:
    """Create ``tenant_id``; return one token per subject in ``subs``."""
    admin.create_tenant(tenant_id)
    return [admin.issue(tenant_id, sub) for sub in subs]


def _admin_post(server: Server, path: str, body: object = None) -> None:
    reply = call(server.port, "POST", path, token=Admin(server.port).token, body=body)
    assert reply.status == 200, reply


def _ours(loads: Counter[tuple[str, int]], prefix: str) -> Counter[tuple[str, int]]:
    """The loads of this scenario's tenants (the database is shared by the session)."""
    return Counter({key: n for key, n in loads.items() if key[0].startswith(prefix)})


def _same_workers(server: Server) -> bool:
    """No worker died or was replaced (a crash or a gunicorn timeout would replace it)."""
    return server.proc.poll() is None and children_of(server.proc.pid) == set(server.pids)


def _probe(server: Server, shot: Shot) -> Record:
    """One verification on a new connection (so any worker may answer), as a Record."""
    start = time.monotonic_ns()
    try:
        status = call(server.port, "GET", "/v1/verify", token=shot.token, probe=shot.label).status
    except OSError:
        status = 0
    return Record(-1, shot.label, start, time.monotonic_ns(), status)


def _answers_by_worker(server: Server, labels: Iterable[str]) -> dict[str, dict[int, set[int]]]:
    """label -> worker pid -> the statuses it answered for that label (access log)."""
    assert server.access_log is not None
    server.access_log.poll()
    found: dict[str, dict[int, set[int]]] = {label: {} for label in labels}
    for (probe, pid, status), _ in server.access_log.lines.items():
        if probe in found:
            found[probe].setdefault(pid, set()).add(status)
    return found


# --------------------------------------------------------------------------- scenario 5


def test_s5_redis_restarts_empty_under_load(
    start_fault_server: StartServer,
    private_redis: PrivateRedis,
    fault_metrics: Record_,
) -> None:
    """S5: Redis restarted empty under load (6 tenants, 24 connections) → no 5xx, no wrong
    401, no revoked token accepted; the cache refills from PostgreSQL with at most a few
    database lookups per tenant per process (single-flight)."""
    server = start_fault_server(TENANTAUTH_THREADS=STAMPEDE_THREADS, **COUNT_LOADS)
    admin = Admin(server.port)
    tenants = [f"s5t{i}" for i in range(6)]
    valid = {t: _tenant(admin, t, "alice")[0] for t in tenants}
    revoked = admin.issue("s5t0", "mallory")
    _admin_post(server, "/v1/admin/tenants/s5t0/users/mallory/revoke")
    shots = [Shot(f"valid-{t}", tok) for t, tok in valid.items()]

    def mix(rng: random.Random) -> Shot:
        return Shot("revoked", revoked) if rng.random() < 0.1 else rng.choice(shots)

    m = ScenarioMetrics("S5 redis restarted empty under load")
    log = LoadLog(server.stdout)
    with Load(server.port, mix, connections=24, rate=600, max_seconds=30) as load:
        time.sleep(1.0)
        log.mark()
        warmings, warmed = metric(server, WARMINGS), metric(server, WARMED_TENANTS)
        private_redis.stop()
        private_redis.start()
        up = time.monotonic()
        refilled = _all_cached(private_redis, tenants)
        recovered = _recovered(server, private_redis, refilled, warmings, "s5")
        m.recover_s = time.monotonic() - up if recovered else None
        time.sleep(2.0)
        records = load.stop()
    rewarmed = metric(server, WARMED_TENANTS) - warmed
    loads = _ours(log.loads(), "s5t")
    m.add(records, valid={s.label for s in shots}, revoked={"revoked"})
    m.set_loads(loads)
    m.note = f"loads per (tenant, pid) {sorted(loads.values())}"
    fault_metrics(m)
    assert m.wrong_accepts == 0, "a revoked token was accepted"
    assert m.wrong_rejects == 0 and m.errors_5xx == 0 and m.conn_errors == 0, load.bodies
    assert m.recover_s is not None, "the cache was not refilled"
    # Read again after the restart: by a miss, or by every worker's warming, which reloads
    # every tenant after the registration the restart forced (memory on).
    read_again = {t for t, _ in loads} == set(tenants)
    assert read_again or rewarmed >= len(tenants) * len(server.pids), (loads, rewarmed)
    assert m.db_loads_max is not None and m.db_loads_max <= LOADS_PER_TENANT_PER_PROCESS, loads
    assert _same_workers(server)


def _all_cached(redis: PrivateRedis, tenants: list[str]) -> Callable[[], bool]:
    """A check: every one of ``tenants`` has an entry in ``redis``."""
    return lambda: all(redis.exists(_entry(t)) for t in tenants)


def _recovered(
    server: Server, redis: PrivateRedis, refilled: Callable[[], bool], warmings: float, tag: str
) -> bool:
    """Wait until the servers recovered from a restart or restore of Redis; return whether
    they did within RECOVER_SECONDS (the caller times it). Recovered: ``refilled`` (the load's
    tenants have current entries in Redis again), or — when the workers answer from memory,
    which they warmed again from PostgreSQL after the registration the restart forced, so
    that the load's tenants may never miss again — every worker warmed again and a tenant
    created after that (``<tag>probe``) is verified and written to the new Redis by its
    first verifications."""

    def rewarmed() -> bool:
        return metric(server, WARMINGS) - warmings >= len(server.pids)

    if wait_for(lambda: refilled() or rewarmed(), RECOVER_SECONDS) is None:
        return False
    if refilled():
        return True
    admin = Admin(server.port)
    probe_id = f"{tag}probe"
    admin.create_tenant(probe_id)
    probe = Shot("probe", admin.issue(probe_id))
    cached = wait_for(lambda: _probe(server, probe) and redis.exists(_entry(probe_id)), 10)
    return cached is not None


# --------------------------------------------------------------------------- scenario 6


class _Snapshot6:
    """Scenario 6's data: tenant A rotated and tenant B's revocations, both *after* the
    snapshot was taken, so the snapshot holds A's old secret and none of B's marks."""

    def __init__(self, server: Server, redis: PrivateRedis, tmp_path: Path, tag: str) -> None:
        admin = Admin(server.port)
        self.a, self.b = f"s6a{tag}", f"s6b{tag}"
        (old,) = _tenant(admin, self.a, "alice")
        bob, carol, dave = _tenant(admin, self.b, "bob", "carol", "dave")
        for token in (old, bob, carol, dave):  # warm: entries cached and used
            assert _probe(server, Shot("warm", token)).status == 200
        self.rdb = redis.snapshot(tmp_path / f"pre-rotation-{tag}.rdb")
        with redis.client() as client:
            self.stale = {t: client.get(_entry(t)) for t in (self.a, self.b)}
        admin.rotate(self.a)
        _admin_post(server, f"/v1/admin/tenants/{self.b}/users/bob/revoke")
        _admin_post(server, f"/v1/admin/tenants/{self.b}/tokens/revoke", {"token": carol})
        self.rejected = [Shot("old-secret", old), Shot("revoked-sub", bob)]
        self.rejected.append(Shot("revoked-jti", carol))
        self.accepted = [Shot("new-secret", admin.issue(self.a)), Shot("bystander", dave)]

    @property
    def shots(self) -> list[Shot]:
        return self.rejected + self.accepted

    def restore(self, redis: PrivateRedis) -> float:
        """Restart the private Redis from the pre-rotation snapshot; return monotonic time."""
        redis.stop()
        redis.start(rdb=self.rdb)
        return time.monotonic()

    def refilled_check(self, redis: PrivateRedis) -> Callable[[], bool]:
        """A check: both tenants' entries were rewritten since the restore (the servers
        refilled them from PostgreSQL instead of trusting the snapshot's)."""

        def refilled() -> bool:
            with redis.client() as client:
                now = {t: client.get(_entry(t)) for t in (self.a, self.b)}
            return all(now[t] is not None and now[t] != self.stale[t] for t in now)

        return refilled


def _snapshot_holds_stale_entries(rdb: Path, tmp_path: Path, tenants: dict[str, bytes]) -> bool:
    """Whether a Redis started from ``rdb`` serves exactly the pre-rotation entries (so the
    scenario really restores old data; checked on a scratch server nobody else uses)."""
    scratch = PrivateRedis(tmp_path / "scratch-redis")
    try:
        scratch.start(rdb=rdb)
        with scratch.client() as client:
            return all(client.get(_entry(t)) == raw for t, raw in tenants.items())
    finally:
        scratch.close()


def _probe_every_worker(server: Server, snap: _Snapshot6, seconds: float) -> list[Record]:
    """Verify every token on new connections for at least ``seconds`` (past the 1 s circuit
    breaker, so the servers read the restored Redis) and until every worker answered each
    one as it should (bounded by RECOVER_SECONDS; the caller checks the outcome)."""
    logs = [server.access_log] if server.access_log else []
    want = [(s.label, 401) for s in snap.rejected] + [(s.label, 200) for s in snap.accepted]
    begin = time.monotonic()
    records: list[Record] = []
    while time.monotonic() - begin < RECOVER_SECONDS:
        records += [_probe(server, shot) for shot in snap.shots]
        everywhere = all(set(server.pids) <= served_by(logs, *w) for w in want)
        if everywhere and time.monotonic() - begin >= seconds:
            break
    return records


def _check_s6(server: Server, snap: _Snapshot6, m: ScenarioMetrics, restored: bool) -> None:
    answers = _answers_by_worker(server, [s.label for s in snap.shots])
    m.note = "; ".join(
        f"{label} {sorted(set().union(*by_pid.values()))} on {len(by_pid)} workers"
        for label, by_pid in answers.items()
    )
    assert restored, "the snapshot did not bring the pre-rotation entries back"
    assert m.wrong_accepts == 0, f"a rotated-away or revoked token was accepted: {answers}"
    assert m.wrong_rejects == 0 and m.errors_5xx == 0 and m.conn_errors == 0, answers
    for shot in snap.shots:
        assert set(answers[shot.label]) >= set(server.pids), f"{shot.label}: not every worker"
    assert m.recover_s is not None, (
        "the servers neither replaced the snapshot's entries nor warmed again"
    )
    assert _same_workers(server)


def test_s6_redis_restored_from_pre_rotation_snapshot(
    fault_server: Server, private_redis: PrivateRedis, tmp_path: Path, fault_metrics: Record_
) -> None:
    """S6: Redis comes back with a snapshot taken before a rotation, a subject revocation and
    a jti revocation → on every worker the old secret, the revoked subject and the revoked jti
    get 401 and the new tokens 200; the stale entries are replaced from PostgreSQL."""
    server = fault_server
    snap = _Snapshot6(server, private_redis, tmp_path, "q")
    m = ScenarioMetrics("S6 redis restored from pre-rotation snapshot")
    restored = _snapshot_holds_stale_entries(snap.rdb, tmp_path, snap.stale)
    warmings = metric(server, WARMINGS)
    up = snap.restore(private_redis)
    records = _probe_every_worker(server, snap, seconds=2.5)
    check = snap.refilled_check(private_redis)
    recovered = _recovered(server, private_redis, check, warmings, "s6q")
    m.recover_s = time.monotonic() - up if recovered else None
    m.add(records, valid={s.label for s in snap.accepted}, revoked={s.label for s in snap.rejected})
    fault_metrics(m)
    _check_s6(server, snap, m, restored)


def test_s6_redis_restored_from_pre_rotation_snapshot_under_load(
    fault_server: Server, private_redis: PrivateRedis, tmp_path: Path, fault_metrics: Record_
) -> None:
    """S6 under load: the same restore while 12 connections verify all five tokens → zero
    wrong accepts, no wrong 401, no 5xx, before, during and after the restore."""
    server = fault_server
    snap = _Snapshot6(server, private_redis, tmp_path, "l")
    m = ScenarioMetrics("S6 snapshot restore under load")
    restored = _snapshot_holds_stale_entries(snap.rdb, tmp_path, snap.stale)
    shots = snap.shots
    with Load(server.port, lambda rng: rng.choice(shots), connections=12, rate=400) as load:
        time.sleep(1.0)
        warmings = metric(server, WARMINGS)
        up = snap.restore(private_redis)
        check = snap.refilled_check(private_redis)
        recovered = _recovered(server, private_redis, check, warmings, "s6l")
        m.recover_s = time.monotonic() - up if recovered else None
        time.sleep(2.5)  # past the 1 s circuit breaker: the servers read the restored Redis
        records = load.stop()
    records += _probe_every_worker(server, snap, seconds=0.0)
    m.add(records, valid={s.label for s in snap.accepted}, revoked={s.label for s in snap.rejected})
    fault_metrics(m)
    _check_s6(server, snap, m, restored)


# --------------------------------------------------------------------------- scenario 10

STAMPEDE = 1000


def test_s10_cold_cache_stampede_of_a_hot_tenant(
    start_fault_server: StartServer,
    private_redis: PrivateRedis,
    pg_proxy: TcpProxy,
    fault_metrics: Record_,
) -> None:
    """S10: 1000 requests of one tenant at once, on 1000 keep-alive connections, right after
    its cache entry was deleted (the database slowed by 20 ms per hop, so the misses overlap)
    → all 200, and at most a few database lookups per process (single-flight)."""
    # The subject is the shared cache's stampede protection, which a worker verifying from
    # memory never reaches once it holds the tenant: this scenario is about the exact path.
    server = start_fault_server(
        TENANTAUTH_THREADS=STAMPEDE_THREADS, TENANTAUTH_VERIFY_MEMORY="false", **COUNT_LOADS
    )
    (token,) = _tenant(Admin(server.port), "s10hot", "alice")
    log = LoadLog(server.stdout)
    fired: list[float] = []

    def cold() -> None:
        with private_redis.client() as client:
            client.delete(_entry("s10hot"))
        pg_proxy.delay(20)
        log.mark()
        fired.append(time.monotonic())

    m = ScenarioMetrics(f"S10 stampede x{STAMPEDE}, cold cache")
    try:
        records, recorder = burst(
            server.port, Shot("warm", token), [Shot("stampede", token)] * STAMPEDE, cold
        )
    finally:
        pg_proxy.restore()
    m.recover_s = max(r.done for r in records) / 1e9 - fired[0] if records else None
    loads = _ours(log.loads(), "s10hot")
    workers = _answers_by_worker(server, ["stampede"])["stampede"]
    m.add(records, valid={"stampede"}, revoked=set())
    m.set_loads(loads)
    m.note = (
        f"loads per pid {dict(Counter({pid: n for (_, pid), n in loads.items()}))}; "
        f"answered by {len(workers)} workers; stale keep-alive retries {recorder.retries}"
    )
    fault_metrics(m)
    assert Counter(r.status for r in records) == Counter({200: STAMPEDE}), recorder.bodies
    assert loads, "the stampede never read the database: was the entry really deleted?"
    assert m.db_loads_max is not None and m.db_loads_max <= LOADS_PER_TENANT_PER_PROCESS, loads
    assert _same_workers(server)


JITTER_TENANTS = 20
#: Rounds of verifying again the tenants a warmed memory answered (see the scenario).
JITTER_RETRIES = 3
CACHE_TTL_MS = 300_000  # TENANTAUTH_CACHE_TTL's default, ±10 % jitter


def test_s10_ttl_jitter_spreads_expiries(
    fault_server: Server, private_redis: PrivateRedis, fault_metrics: Record_
) -> None:
    """S10 jitter: 20 tenants filled at the same moment get entry TTLs spread over the ±10 %
    window (PTTL on the private Redis), so they do not expire together."""
    admin = Admin(fault_server.port)
    tenants = [f"s10j{i:02d}" for i in range(JITTER_TENANTS)]
    shots = [Shot("jitter", _tenant(admin, t, "alice")[0]) for t in tenants]
    with private_redis.client() as client:
        client.delete(*[_entry(t) for t in tenants])
    with ThreadPoolExecutor(JITTER_TENANTS) as pool:
        records = list(pool.map(lambda s: _probe(fault_server, s), shots))
    # A worker that registered its lease again (S5 and S6 restart Redis) loads every tenant
    # into its memory once a verification misses there (docs/design.md, "Warming memory"),
    # so the last of these probes may be answered from memory without filling Redis. Such a
    # tenant is taken out of every worker's memory (a rotation every worker acknowledges)
    # and verified again.
    again: list[str] = []
    for _ in range(JITTER_RETRIES):
        missing = [t for t in tenants if not private_redis.exists(_entry(t))]
        if not missing:
            break
        again += missing
        for tenant in missing:
            admin.rotate(tenant)
            records.append(_probe(fault_server, Shot("jitter", admin.issue(tenant, "alice"))))
    with private_redis.client() as client:
        ttls = sorted(int(client.pttl(_entry(t))) for t in tenants)
    m = ScenarioMetrics("S10 TTL jitter, 20 tenants filled at once")
    m.add(records, valid={"jitter"}, revoked=set())
    spread = ttls[-1] - ttls[0]
    m.note = (
        f"entry TTLs {ttls[0] / 1000:.1f}..{ttls[-1] / 1000:.1f} s, spread {spread / 1000:.1f} s"
        f"; answered from a warmed memory, verified again: {len(again)}"
    )
    fault_metrics(m)
    assert [r.status for r in records] == [200] * (JITTER_TENANTS + len(again))
    low, high = CACHE_TTL_MS * 0.9 - 5_000, CACHE_TTL_MS * 1.1
    assert all(low <= ttl <= high for ttl in ttls), ttls
    # 20 uniform draws over a 60 s window span less than 15 s with probability ~1e-11.
    assert spread >= 0.25 * (high - CACHE_TTL_MS * 0.9), f"TTLs not spread: {ttls}"


# --------------------------------------------------------------------------- scenario 11

PHASE_SECONDS = 3.0
LEGIT_RATE, FLOOD_RATE = 150.0, 300.0
UNKNOWN_POOL = 300
#: The DEBUG line of a read of the tenant directory (domain/verifying/directory.py).
DIRECTORY_LINE = re.compile(rb"directory load tenants=\S+ pid=(\d+)")


class _Unknown:
    """Tokens of random tenant ids that do not exist: a pool reused over and over, and fresh
    ids (one in four), which no per-id negative cache could have seen."""

    def __init__(self, template: str) -> None:
        segment = template.split(".")[1]
        self.claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        self.pool = [self._token(self._new_id()) for _ in range(UNKNOWN_POOL)]
        self.fresh = 0

    def _new_id(self) -> str:
        return "s11x" + secrets.token_hex(8)

    def _token(self, tenant_id: str) -> str:
        claims = {**self.claims, "tid": tenant_id, "jti": secrets.token_hex(8)}
        return jwt.encode(claims, tenant_id, secrets.token_bytes(32))

    def mix(self, rng: random.Random) -> Shot:
        """Three in four from the pool, one in four a never-seen id."""
        if rng.random() < 0.75:
            return Shot("unknown", rng.choice(self.pool))
        self.fresh += 1
        return Shot("unknown", self._token(self._new_id()))


def _flood_child(port: int, kind: str, template: str, seed: int, pipe: Connection) -> None:
    """A flood in a process of its own (spawned): ``kind`` "flood" (unknown ids) or "control"
    (``template`` re-signed with a wrong key). Reports "started", floods until told "stop",
    then sends back (records, failure bodies, ids seen)."""
    unknown = _Unknown(template) if kind == "flood" else None
    forged = template.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(bytes(32)).decode()[:43]
    control = [Shot("control", forged)]
    mix = unknown.mix if unknown is not None else lambda rng: rng.choice(control)
    with Load(port, mix, connections=8, rate=FLOOD_RATE, seed=seed) as flood:
        pipe.send("started")
        pipe.poll(60)  # "stop", or the parent is gone
        records = flood.stop()
    seen = UNKNOWN_POOL + unknown.fresh if unknown is not None else 0
    pipe.send((records, flood.bodies, seen))


class _Flood:
    """A flood in its own process, so that its client work (token signing, parsing) never
    competes for the test process's GIL with the legitimate clients whose latency is measured
    — the flood shares only the machine, as an attacker would."""

    def __init__(self, port: int, kind: str, template: str, seed: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_flood_child, args=(port, kind, template, seed, child), daemon=True
        )

    def __enter__(self) -> _Flood:
        self._process.start()
        assert self._pipe.poll(60) and self._pipe.recv() == "started", "flood did not start"
        return self

    def stop(self) -> tuple[list[Record], Counter[tuple[str, int, str]], int]:
        """Stop the flood; return its records, failure bodies and the number of ids used."""
        self._pipe.send("stop")
        assert self._pipe.poll(60), "flood did not report"
        result: tuple[list[Record], Counter[tuple[str, int, str]], int] = self._pipe.recv()
        return result

    def __exit__(self, *exc: object) -> None:
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
        self._pipe.close()


def _directory_loads(log: LoadLog) -> Counter[int]:
    """Reads of the tenant directory per pid logged since ``log``'s mark."""
    return Counter(int(m[1]) for m in DIRECTORY_LINE.finditer(log.text()))


def _redis_memory(redis: PrivateRedis) -> tuple[int, int]:
    """(used_memory, number of keys) of the private Redis."""
    with redis.client() as client:
        return int(client.info("memory")["used_memory"]), int(client.dbsize())


def _flood_keys(redis: PrivateRedis) -> list[str]:
    """Every key the flood's unknown ids left in Redis."""
    with redis.client() as client:
        return [k.decode() for k in client.scan_iter(match=cache_key("s11x*", "*"), count=1000)]


def test_s11_flood_of_unknown_tenant_ids(
    start_fault_server: StartServer, private_redis: PrivateRedis, fault_metrics: Record_
) -> None:
    """S11: 300 req/s of random unknown tenant ids next to 150 req/s of real traffic → every
    unknown id 401 with the same body as a bad signature, real tokens 200; no database read
    and no Redis key for any unknown id (the tenant directory rules them out: one read of the
    ids per process).

    The legitimate p99 is measured quiet, under the flood and under a *control* flood of the
    same rate of bad-signature tokens of the real tenant (the cheapest request that still
    fails), and reported, not asserted: speed is the benchmark's to judge (``make
    bench-scale``'s flood row holds issue 14's bound, p99 under the flood at most 2x the
    quiet one). On this 2-core machine the load generators and 3 workers share the CPU, and
    a busy host moved these few-millisecond figures past the bound while every answer
    stayed right."""
    server = start_fault_server(**COUNT_LOADS)
    (token,) = _tenant(Admin(server.port), "s11real", "alice")
    forged = token.rsplit(".", 1)[0] + "." + base64.urlsafe_b64encode(bytes(32)).decode()[:43]
    legit = [Shot("legit", token)] * 19 + [Shot("forged", forged)]
    log = LoadLog(server.stdout)
    phases: list[tuple[str, int, int]] = []
    flood_records: list[Record] = []
    failures: Counter[tuple[str, int, str]] = Counter()
    ids_seen = 0
    with Load(server.port, lambda rng: rng.choice(legit), connections=4, rate=LEGIT_RATE) as real:
        time.sleep(0.5)  # warm
        memory_before = _redis_memory(private_redis)
        for seed, name in enumerate(("base", "flood", "control", "base", "control", "flood")):
            if name == "base":
                begin = time.monotonic_ns()
                time.sleep(PHASE_SECONDS)
            else:
                with _Flood(server.port, name, token, seed) as flood:
                    begin = time.monotonic_ns()
                    time.sleep(PHASE_SECONDS)
                    records, bodies, seen = flood.stop()
                flood_records += records
                failures += bodies
                ids_seen += seen
            phases.append((name, begin, time.monotonic_ns()))
        memory_after = _redis_memory(private_redis)
        directory_reads = _directory_loads(log)
        # Every worker now holds a directory without this tenant: it must verify everywhere
        # the moment its creation returned.
        (new_token,) = _tenant(Admin(server.port), "s11new", "bob")
        shot, created = Shot("s11new", new_token), list[Record]()
        everywhere = until_every_worker(
            server, lambda: created.append(_probe(server, shot)), shot.label, timeout=10.0
        )
        legit_records = real.stop()
    leftovers = _flood_keys(private_redis)
    loads = _ours(log.loads(), "s11x")
    latency = {
        name: sorted(
            (r.done - r.start) / 1e6
            for r in legit_records
            if r.label == "legit" and any(p == name and b <= r.start < e for p, b, e in phases)
        )
        for name in ("base", "flood", "control")
    }
    p99 = {name: percentile(values, 99) for name, values in latency.items()}
    grown, new_keys = memory_after[0] - memory_before[0], memory_after[1] - memory_before[1]
    m = ScenarioMetrics("S11 flood of unknown tenant ids")
    m.add(legit_records + flood_records, valid={"legit"}, revoked={"unknown", "forged", "control"})
    m.set_loads(loads)
    m.note = (
        f"legit p99 {p99['base']:.1f} ms quiet, {p99['flood']:.1f} ms under the unknown-id "
        f"flood, {p99['control']:.1f} ms under the control flood; "
        f"{sum(r.label == 'unknown' for r in flood_records)} unknown-id requests, "
        f"{ids_seen} ids, {sum(loads.values())} DB lookups of them, "
        f"{sum(directory_reads.values())} directory reads; Redis {new_keys:+} keys, {grown:+} B; "
        f"a tenant created after the floods: {len(created)} probes, "
        f"{sum(r.status == 200 for r in created)} accepted"
    )
    fault_metrics(m)
    failures += real.bodies
    assert m.wrong_accepts == 0 and m.wrong_rejects == 0 and m.errors_5xx == 0
    assert m.conn_errors == 0
    assert {status for (_, status, _) in failures} == {401}
    assert len({body for (_, _, body) in failures}) == 1, "401 bodies differ: " + str(failures)
    assert not loads, f"unknown ids were read from the database: {sum(loads.values())}"
    assert all(pid in server.pids for pid in directory_reads), directory_reads
    assert max(directory_reads.values(), default=0) <= 1, "the directory was read again"
    assert not leftovers, f"unknown ids left keys in Redis: {leftovers[:10]}"
    # used_memory also moves with client buffers and allocator state: 256 KiB of slack.
    assert new_keys <= 10 and grown <= 256 * 1024, (new_keys, grown)
    assert [r.status for r in created if r.status != 200] == [], "a new tenant was ruled out"
    assert everywhere, "not every worker answered the new tenant's token"
    assert _same_workers(server)
