"""bench/scale.py's pieces: seeding in process, wrk with random tokens, the three phases.

Every phase reads the server's Prometheus metrics (its metrics port) before and after, so the
rows can say where the answers came from (``tenantauth_cache_reads_total`` by outcome) and
how many database calls were made (``tenantauth_dependency_call_duration_seconds_count``).
"""

from __future__ import annotations

import gc
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import parse_wrk, worker_split
from tests.e2e.harness import HOST, Server, call, children_of
from tests.support import ADMIN_TOKEN, Backend, make_settings

from tenantauth.bootstrap import build_services
from tenantauth.domain import tenants
from tenantauth.domain.models import TenantSnapshot
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.domain.verifying.memory import VerifyMemory

if TYPE_CHECKING:
    from scale import Config

#: Threads creating tenants and minting tokens: the calls mostly wait on PostgreSQL and Redis.
SEED_THREADS = 8
#: Tokens outlive every run of one size (seeding 100,000 tenants takes minutes).
TOKEN_TTL = 3600
KINDS = ("rotate", "suspend", "resume", "user revoke", "jti revoke")


@dataclass
class Seeded:
    """Tenant ``tenant_id(i)`` holds one token, ``tokens[i]``, of subject ``subject(i)``,
    minted through ``svc`` (open while the size is measured)."""

    svc: Services
    tokens: list[str] = field(default_factory=list)
    seconds: float = 0.0
    how: str = ""

    @staticmethod
    def tenant_id(i: int) -> str:
        """The id of the i-th tenant."""
        return f"scale-{i:06d}"

    @staticmethod
    def subject(i: int) -> str:
        """The subject of the i-th tenant's token."""
        return f"user-{i}"

    def mint(self, i: int) -> str:
        """A new token of the i-th tenant's subject, valid for ``TOKEN_TTL``."""
        request = TokenRequest(self.tenant_id(i), self.subject(i), ttl=TOKEN_TTL)
        svc = self.svc
        issued = issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request)
        return str(issued.access_token)

    def renew(self, indexes: Iterable[int]) -> None:
        """Mint new tokens for these tenants (after changes revoked their old ones)."""
        for i in set(indexes):
            self.tokens[i] = self.mint(i)


@contextmanager
def seed(pg_url: str, redis_url: str, count: int, tmp: Path) -> Iterator[Seeded]:
    """Create ``count`` tenants through ``tenants.create_tenant`` on Services built for the
    server's database and Redis (schema migrated first), then mint one token each with
    ``issue_token``; yield them, with how long it took. The Services close on the way out."""
    started = time.monotonic()
    backend = Backend("postgres", pg_url, redis_url)
    settings = make_settings(backend, Path(tempfile.mkdtemp(dir=tmp)), db_pool_max_size=20)
    seeded = Seeded(build_services(settings))
    try:
        seeded.svc.storage.migrate()  # type: ignore[attr-defined]

        def create(i: int) -> None:
            tenants.create_tenant(seeded.svc, Seeded.tenant_id(i), Seeded.tenant_id(i))

        with ThreadPoolExecutor(SEED_THREADS) as pool:
            list(pool.map(create, range(count), chunksize=64))
            seeded.tokens = list(pool.map(seeded.mint, range(count), chunksize=64))
        seeded.seconds = time.monotonic() - started
        seeded.how = (
            "in process: tenants.create_tenant and issue_token on build_services(settings) of "
            f"the server's database and Redis, {SEED_THREADS} threads"
        )
        yield seeded
    finally:
        seeded.svc.close()


def prefill(seeded: Seeded, indexes: list[int]) -> float:
    """Verify each of these tenants' tokens once in this process, through the seeding
    Services: a miss fills the shared Redis as a server's miss would, so the server then
    meets the warm Redis of a steady state (entries live ``CachePolicy.ttl``, 300 s).
    Returns the seconds it took."""
    started = time.monotonic()
    verify_one = seeded.svc.verifier.verify
    with ThreadPoolExecutor(2 * SEED_THREADS) as pool:
        list(pool.map(lambda i: verify_one(seeded.tokens[i]), indexes, chunksize=256))
    return time.monotonic() - started


def held_footprint(seeded: Seeded, count: int) -> dict[str, float]:
    """Estimate what holding ``count`` tenants costs one worker: this process's VmRSS growth
    when a ``VerifyMemory`` of that capacity is filled with the snapshots a worker would
    load (``load_key_record``, no revocations, as seeded). An estimate: a server's workers
    reach it only after verifying every tenant once each. Returns MiB in all and per tenant."""
    memory = VerifyMemory(3600.0, capacity=count)
    memory.registered(0, time.monotonic())
    load = seeded.svc.storage.load_key_record
    gc.collect()
    before = _self_rss()
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        records = pool.map(lambda i: load(Seeded.tenant_id(i)), range(count), chunksize=256)
        for record in records:
            assert record is not None
            memory.offer(memory.note(), TenantSnapshot(record))
    gc.collect()
    grown = _self_rss() - before
    held = sum(1 for i in range(count) if memory.get(Seeded.tenant_id(i)) is not None)
    return {"tenants": held, "mib": grown, "kib_per_tenant": grown * 1024 / max(1, held)}


def _self_rss() -> float:
    found = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(found[1]) / 1024 if found else 0.0


def random_script(path: Path, tokens: list[str]) -> Path:
    """Write a wrk Lua script sending GET /v1/verify with a token picked at random (per
    request, per thread seeded apart) from ``tokens``, which it reads from a file of its own
    beside it (``listing``; not tried as a table literal, as bench/common.py writes one:
    100,000 string constants in one chunk may exceed LuaJIT's limits; a file is safe at any
    size); return ``path``."""
    listing = listing_of(path)
    listing.write_text("\n".join(tokens) + "\n", encoding="ascii")
    path.write_text(
        "local tokens = {}\n"
        f'for line in io.lines("{listing}") do tokens[#tokens + 1] = line end\n'
        "local n = 0\n"
        "function setup(thread)\n"
        "  n = n + 1\n"
        "  thread:set('id', n)\n"
        "end\n"
        "function init(args)\n"
        "  math.randomseed(os.time() * 7919 + (id or 0) * 104729)\n"
        "end\n"
        "function request()\n"
        "  local token = tokens[math.random(#tokens)]\n"
        '  return wrk.format("GET", "/v1/verify", {["Authorization"] = "Bearer " .. token})\n'
        "end\n",
        encoding="ascii",
    )
    return path


def listing_of(script: Path) -> Path:
    """The file of tokens a ``random_script`` picks from."""
    return script.with_suffix(".tokens")


def start_wrk(
    port: int, script: Path, seconds: float, threads: int = 2, connections: int = 32
) -> subprocess.Popen[str]:
    """Start ``wrk --latency`` on GET /v1/verify (2 s timeout, as bench/common.py's)."""
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    argv += ["--latency", "--timeout=2s", "-s", str(script), f"http://{HOST}:{port}/v1/verify"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_wrk(proc: subprocess.Popen[str], *, interrupt: bool = False) -> dict[str, float]:
    """Wait for wrk (SIGINT first if ``interrupt``: it stops and reports); return its report
    parsed. Raises RuntimeError with its output if it failed."""
    if interrupt:
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}{err}")
    return parse_wrk(out)


def metrics(server: Server) -> dict[str, float]:
    """The counters the rows use, from the server's /metrics: cache reads by outcome and
    database calls."""
    url = f"http://{HOST}:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        text = reply.read().decode()
    found: dict[str, float] = {}
    reads = r'^tenantauth_cache_reads_total\{[^}]*outcome="(\w+)"[^}]*\} (\S+)$'
    for outcome, value in re.findall(reads, text, re.MULTILINE):
        found[outcome] = found.get(outcome, 0.0) + float(value)
    series = r"^(tenantauth_\w+?)(_sum|_count)\{([^}]*)\} (\S+)$"
    for name, part, labels, value in re.findall(series, text, re.MULTILINE):
        key = _series_key(name, labels)
        if key:
            found[key + part] = found.get(key + part, 0.0) + float(value)
    found["database"] = found.pop("database_count", 0.0)
    found.pop("database_sum", None)
    return found


def _series_key(name: str, labels: str) -> str:
    """The key a histogram's _sum/_count is summed under: database calls, the invalidation
    waits of changes (any outcome), the server-side time of each admin route; else ""."""
    if name == "tenantauth_dependency_call_duration_seconds":
        return "database" if 'dependency="database"' in labels else ""
    if name == "tenantauth_invalidation_wait_seconds":
        return "invalidation_wait"
    route = re.search(r'route="(/v1/admin/[^"]*)"', labels)
    method = re.search(r'method="(\w+)"', labels)
    if name != "tenantauth_http_request_duration_seconds" or not route or not method:
        return ""
    return f"admin {method[1]} {route[1]}"


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Counter differences, every key of either."""
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in before.keys() | after.keys()}


def worker_rss(server: Server) -> list[float]:
    """VmRSS of each server worker, MiB (workers now, from /proc: a restarted worker has a
    new pid)."""
    sizes = []
    for pid in sorted(children_of(server.proc.pid)):
        status = Path(f"/proc/{pid}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if found:
            sizes.append(int(found[1]) / 1024)
    return sizes


def uptime() -> str:
    """``uptime``'s load averages (1, 5, 15 min)."""
    out = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    return out.rsplit("load average:", 1)[-1].strip()


#: A worker's log line when warming its memory ended (domain/verifying/warming.py).
WARMED = re.compile(r"memory warmed: (\d+) tenants in ([\d.]+) s")
#: How long the bench waits for every worker to finish warming before it measures anyway.
WARM_TIMEOUT = 300.0


def verify(cfg: Config, server: Server, script: Path, *, memory: bool) -> dict[str, Any]:
    """Warm up (with ``memory``, until every worker says it finished warming its memory), then
    one measured ``wrk -t2 -c32`` run; with the metrics' deltas, the share answered from
    memory, worker RSS after, the load average and each worker's warming (tenants, seconds)."""
    finish_wrk(start_wrk(server.port, script, cfg.warm_seconds))
    warmed = wait_warmed(server, script) if memory else []
    before = metrics(server)
    result = measured(server, script, cfg.seconds)
    moved = delta(before, metrics(server))
    reads = sum(v for k, v in moved.items() if k != "database")
    return {
        **result,
        "metrics": moved,
        "memory_share": moved.get("memory", 0.0) / reads if reads else 0.0,
        "rss_mib": worker_rss(server),
        "load": uptime(),
        "warmed": warmed,
    }


def measured(server: Server, script: Path, seconds: float) -> dict[str, Any]:
    """One measured ``wrk -t2 -c32`` run, with the CPU seconds each worker spent in it
    (``split``): granian's workers share one accept queue, and now and then one of them
    accepts all 32 connections while the other idles (docs/design.md, "One accept queue,
    and its price"); the split shows which runs that was."""
    with worker_split(sorted(children_of(server.proc.pid))) as split:
        result = finish_wrk(start_wrk(server.port, script, seconds))
    return {**result, **split}


def alternate(cfg: Config, server: Server, scripts: dict[str, Path]) -> list[dict[str, Any]]:
    """``cfg.rounds`` rounds on one server, each one measured run of every script in turn
    (``hot``: a few tenants' tokens; ``hot_many``: as many tokens as ``every`` has, all of
    those few tenants; ``every``: one token of each tenant): the pick sizes side by side on
    the same server, memory and machine minute. Returns each round's runs by name."""
    return [
        {name: measured(server, script, cfg.seconds) for name, script in scripts.items()}
        for _ in range(cfg.rounds)
    ]


def mint_many(seeded: Seeded, indexes: Sequence[int], count: int) -> list[str]:
    """``count`` new tokens, spread evenly over the tenants ``indexes`` (a few threads)."""
    picks = [indexes[k % len(indexes)] for k in range(count)]
    with ThreadPoolExecutor(SEED_THREADS) as pool:
        return list(pool.map(seeded.mint, picks, chunksize=256))


def wait_warmed(server: Server, script: Path) -> list[tuple[int, float]]:
    """Wait until every worker logged that it warmed its memory (at most ``WARM_TIMEOUT``);
    return each one's (tenants, seconds), as many as there are by then.

    A worker warms after its first verification, and now and then one accepted none of the
    warm-up's connections (granian's workers share one accept queue): while some have not
    finished, a few verifications of one of ``script``'s tokens on new connections reach
    it. (Without them the smoke test once waited out the whole timeout, 300 s.)"""
    token = listing_of(script).read_text(encoding="ascii").split("\n", 1)[0]
    deadline = time.monotonic() + WARM_TIMEOUT
    while True:
        found = [(int(n), float(s)) for n, s in WARMED.findall(server.output())]
        if len(found) >= server.workers or time.monotonic() > deadline:
            return found
        for _ in range(4):
            call(server.port, "GET", "/v1/verify", token=token)
        time.sleep(0.5)


def flood(cfg: Config, server: Server, valid: Path, unknown: Path) -> dict[str, Any]:
    """Two wrk at once, ``-t1 -c16`` each, the first with valid tokens; the second with valid
    tokens too (no flood), then with unknown tenant ids (flood). Returns both runs of each."""

    def pair(second: Path) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
        before = metrics(server)
        first = start_wrk(server.port, valid, cfg.seconds, 1, 16)
        other = start_wrk(server.port, second, cfg.seconds, 1, 16)
        return finish_wrk(first), finish_wrk(other), delta(before, metrics(server))

    calm, calm_other, _ = pair(valid)
    valid_run, ghosts, moved = pair(unknown)
    return {
        "no_flood": calm,
        "no_flood_other": calm_other,
        "flood_valid": valid_run,
        "flood_unknown": ghosts,
        "metrics": moved,
        "load": uptime(),
    }


def changes(
    cfg: Config,
    server: Server,
    script: Path,
    seeded: Seeded,
    sent: list[int],
    *,
    through: Server | None = None,
) -> dict[str, Any]:
    """While ``wrk -t2 -c32`` verifies on ``server``, after ``warm_up``, ``cfg.changes``
    rounds of: suspend, resume and jti revoke tenant a; user revoke, then rotate tenant b
    (a, b: among ``sent``, the tenants whose tokens wrk is sending), over the admin API of
    ``through`` (default: ``server`` itself; an admin-role server beside it otherwise).
    Returns each call's latency
    (ms) by kind, the admin calls that failed, the verify run's report (its 401s are
    expected: those tokens were revoked), the changing server's metrics over the calls, the
    load average and the tenants changed (``touched``: their tokens need renewing)."""
    picks = [sent[i % len(sent)] for i in range(2 * cfg.changes)]
    timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
    failed: list[str] = []
    changer = through or server
    load = start_wrk(server.port, script, 600)
    time.sleep(1.0)  # wrk's connections open and busy before the first change
    try:
        warm_up(changer, seeded, picks)
        before = metrics(changer)
        for i in range(cfg.changes):
            a, b = picks[i], picks[cfg.changes + i]
            for kind, method, path, body in change_round(seeded, a, b):
                ms, ok = admin_call(changer.port, method, path, body)
                timings[kind].append(ms)
                if not ok:
                    failed.append(f"{kind} {path}")
            if load.poll() is not None:
                break
        still_loaded = load.poll() is None
        moved = delta(before, metrics(changer))
    finally:
        verify_run = finish_wrk(load, interrupt=load.poll() is None)
    return {
        "timings_ms": timings,
        "admin_failed": failed,
        "under_load_throughout": still_loaded,
        "verify": verify_run,
        "load": uptime(),
        "touched": picks,
        "metrics": moved,
    }


#: Untimed rounds of changes per worker of the changing server before the measured ones: a
#: fresh process's first admin calls pay one-time costs (its pools' first connections, the
#: tenant directory's read of every id), as its first verifications do before wrk's warm-up.
WARM_ROUNDS_PER_WORKER = 2


def warm_up(changer: Server, seeded: Seeded, picks: list[int]) -> None:
    """Make ``WARM_ROUNDS_PER_WORKER`` rounds per worker of ``changer`` (untimed; new
    connections each, so both workers take some), then renew the tokens they revoked."""
    rounds = WARM_ROUNDS_PER_WORKER * changer.workers
    pairs = [(picks[i % len(picks)], picks[-1 - i % len(picks)]) for i in range(rounds)]
    for a, b in pairs:
        for _kind, method, path, body in change_round(seeded, a, b):
            admin_call(changer.port, method, path, body)
    seeded.renew([i for pair in pairs for i in pair])


def change_round(seeded: Seeded, a: int, b: int) -> list[tuple[str, str, str, Any]]:
    """One round of the five change kinds: (kind, method, path, body) on tenants a and b."""
    base_a, base_b = (f"/v1/admin/tenants/{seeded.tenant_id(i)}" for i in (a, b))
    return [
        ("suspend", "PATCH", base_a, {"status": "suspended"}),
        ("resume", "PATCH", base_a, {"status": "active"}),
        ("jti revoke", "POST", f"{base_a}/tokens/revoke", {"token": seeded.tokens[a]}),
        ("user revoke", "POST", f"{base_b}/users/{seeded.subject(b)}/revoke", None),
        ("rotate", "POST", f"{base_b}/rotate", {}),
    ]


def admin_call(port: int, method: str, path: str, body: Any) -> tuple[float, bool]:
    """One admin call; its latency (ms, connecting included) and whether it answered 2xx
    (and, for a jti revoke, revoked)."""
    started = time.perf_counter()
    reply = call(port, method, path, token=ADMIN_TOKEN, body=body)
    ms = (time.perf_counter() - started) * 1e3
    if not 200 <= reply.status < 300:
        return ms, False
    return ms, not path.endswith("/tokens/revoke") or reply.json()["revoked"] is True
