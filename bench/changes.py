"""Changes under verify load, beside the floor of the machine (``make bench-changes``).

Issue 14 asks for rotate, suspend, user revoke and jti revoke at p99 <= 50 ms while verify
runs at full load. bench/scale.py measures that at 100 and 100,000 tenants in 20 minutes;
this measures it alone in two, with what a reader needs to judge the figure: the same
percentiles for requests that do no tenantauth work at all, at the same moments.

One database and one Redis DB, seeded in process (bench/scale_load.py); two servers as
shipped (verifying from memory, the default): one under ``wrk -t2 -c32`` with random tokens
of the first 100 tenants ("loaded server"), one with ``TENANTAUTH_ROLE=admin`` beside it
("admin server", as k8s/overlays/gke-admin-plane deploys it). Idle, then loaded, rounds
alternate between the two servers: one call of each change kind (on tenants wrk does not
send, so the load stays all 200s), then five of each probe:

- Redis ``PING`` and PostgreSQL ``SELECT 1`` from this process (a round trip, no tenantauth);
- ``GET /healthz`` (no I/O) and ``GET /readyz`` (PostgreSQL, Redis and lease checks)
  through that server.

Every call opens its own connection, as an admin client would. Writes
docs/performance-changes.md (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # bench/scale.py
import scale_load  # bench/scale_load.py
from common import claimed_redis, machine
from report import today
from run import postgres_database
from tests.e2e.harness import Server, call
from tests.faults.harness import percentile as nearest_rank

DOCS = Path(__file__).resolve().parents[1] / "docs"
#: Tenants whose tokens wrk sends; the changes take others.
SENT = 100
ROUTES = ("loaded server", "admin server")
PROBES = ("Redis PING", "PostgreSQL SELECT 1", "GET /healthz", "GET /readyz")
TARGET_MS = 50.0
#: Each probe's calls per round (cheap: more samples for their percentiles).
PROBES_PER_ROUND = 5
#: Untimed rounds first: each server's first calls open its pools' connections.
WARM_ROUNDS = 2


def main(argv: list[str] | None = None) -> None:
    """Measure idle, then loaded; print the doc and write it unless ``--no-write``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="loaded rounds per server (40)")
    parser.add_argument("--idle-rounds", type=int, default=10, help="idle rounds (10)")
    parser.add_argument("--no-write", action="store_true", help="do not write the doc")
    args = parser.parse_args(argv)
    meta = {"date": today(), "machine": machine(), "load_start": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        measured = measure(Path(tmp), args.rounds, args.idle_rounds)
    meta["load_end"] = os.getloadavg()
    text = document(*measured, meta)
    print(text)
    if not args.no_write:
        (DOCS / "performance-changes.md").write_text(text, encoding="utf-8")
        print(f"wrote {DOCS / 'performance-changes.md'}")


def measure(
    tmp: Path, rounds: int, idle_rounds: int, *, sent: int = SENT, settle: float = 2.0
) -> tuple[Timings, Timings, dict[str, dict[str, float]], dict[str, float]]:
    """Seed, start both servers, and measure ``idle_rounds`` then, with wrk sending the
    tokens of ``sent`` tenants to the loaded server (``settle`` s after it starts),
    ``rounds``. Returns the idle and loaded timings, each server's metrics moved over the
    loaded rounds, and wrk's report."""
    with ExitStack() as stack:
        pg_url = stack.enter_context(postgres_database())
        redis_url = stack.enter_context(claimed_redis())
        count = sent + 2 * len(ROUTES) * (rounds + idle_rounds + WARM_ROUNDS)
        seeded = stack.enter_context(scale_load.seed(pg_url, redis_url, count, tmp))
        cfg = scale.Config(tmp, (count,))
        script = scale_load.random_script(tmp / "valid.lua", seeded.tokens[:sent])
        loaded = stack.enter_context(scale.server(cfg, pg_url, redis_url, "on"))
        admin = stack.enter_context(scale.server(cfg, pg_url, redis_url, "on", role="admin"))
        servers = {"loaded server": loaded, "admin server": admin}
        probes = _probes(redis_url, pg_url, stack)
        spare = iter(range(sent, count))
        _rounds(servers, probes, seeded, spare, WARM_ROUNDS)  # untimed: first connections
        idle = _rounds(servers, probes, seeded, spare, idle_rounds)
        load = scale_load.start_wrk(loaded.port, script, 600)
        time.sleep(settle)  # wrk's connections open and busy
        before = {name: scale_load.metrics(srv) for name, srv in servers.items()}
        busy = _rounds(servers, probes, seeded, spare, rounds)
        moved = {
            name: scale_load.delta(before[name], scale_load.metrics(srv))
            for name, srv in servers.items()
        }
        verify = scale_load.finish_wrk(load, interrupt=load.poll() is None)
    return idle, busy, moved, verify


Timings = dict[tuple[str, str], list[float]]  # (route, kind or probe) -> ms


def _probes(redis_url: str, pg_url: str, stack: ExitStack) -> dict[str, Callable[[Server], Any]]:
    """The probes by name; each takes the server of the round (the first two ignore it)."""
    client = redis.Redis.from_url(redis_url)
    stack.callback(client.close)
    database = stack.enter_context(psycopg.connect(pg_url, autocommit=True))
    return {
        "Redis PING": lambda _srv: client.ping(),
        "PostgreSQL SELECT 1": lambda _srv: database.execute("SELECT 1").fetchone(),
        "GET /healthz": lambda srv: call(srv.port, "GET", "/healthz"),
        "GET /readyz": lambda srv: call(srv.port, "GET", "/readyz"),
    }


def _rounds(
    servers: dict[str, Server],
    probes: dict[str, Callable[[Server], Any]],
    seeded: scale_load.Seeded,
    spare: Any,
    rounds: int,
) -> Timings:
    """``rounds`` rounds per server, alternating: the five change kinds on two tenants of
    ``spare`` not used before, then each probe ``PROBES_PER_ROUND`` times. Returns the latencies (ms). Raises
    RuntimeError if a change did not answer 2xx (a figure of failures would mean nothing)."""
    timings: Timings = {}
    for _ in range(rounds):
        for route, server in servers.items():
            a, b = next(spare), next(spare)
            for kind, method, path, body in scale_load.change_round(seeded, a, b):
                ms, ok = scale_load.admin_call(server.port, method, path, body)
                if not ok:
                    raise RuntimeError(f"{kind} {path} through the {route} failed")
                timings.setdefault((route, kind), []).append(ms)
            for _ in range(PROBES_PER_ROUND):
                for name, probe in probes.items():
                    started = time.perf_counter()
                    probe(server)
                    timings.setdefault((route, name), []).append(
                        (time.perf_counter() - started) * 1e3
                    )
    return timings


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank percentile of ``values`` (ms), as the fault suite computes it."""
    return nearest_rank(sorted(values), pct)


def document(
    idle: Timings,
    busy: Timings,
    moved: dict[str, dict[str, float]],
    verify: dict[str, float],
    meta: dict[str, Any],
) -> str:
    """The markdown of docs/performance-changes.md."""
    m = meta["machine"]
    lines = [
        "# Changes under verify load, beside the machine's floor (issue 14)",
        "",
        f"Written by `make bench-changes` (bench/changes.py) on {meta['date']}; do not edit "
        "by hand, run it again. What it measures and why: the module's docstring. "
        "**wrk shares the cores with the servers, PostgreSQL and Redis**: the loaded rows "
        "measure a machine with no idle CPU.",
        "",
        f"- CPU: {m['cpu_model']}; {m['usable_cores']} cores usable; load average at the start "
        f"{_loads(meta['load_start'])}, at the end {_loads(meta['load_end'])}",
        f"- Verify during the loaded rounds: {verify.get('rps', 0):,.0f} req/s, "
        f"p99 {verify.get('p99_ms', 0):.2f} ms, non-2xx {verify.get('non_2xx', 0):,.0f}",
        "",
        "| through | what | idle p50 / p99 ms | loaded n | loaded p50 | p90 | p99 | max |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    kinds = scale_load.KINDS
    for route in ROUTES:
        changes = [ms for kind in kinds for ms in busy[(route, kind)]]
        idle_changes = [ms for kind in kinds for ms in idle[(route, kind)]]
        lines.append(_row(route, "**every change**", idle_changes, changes))
        for name in PROBES:
            where = "this process" if name in PROBES[:2] else route
            lines.append(_row(where, name, idle[(route, name)], busy[(route, name)]))
    lines += [
        "",
        f"Each change kind, loaded (p99 of its calls, ms; target <= {TARGET_MS:.0f}):",
        "",
        "| kind | " + " | ".join(ROUTES) + " |",
        "|---|" + "---:|" * len(ROUTES),
    ]
    for kind in kinds:
        cells = [f"{percentile(busy[(route, kind)], 99):.1f}" for route in ROUTES]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Server side, loaded (means over the calls, ms, from each server's metrics):",
        "",
        "| server | admin request | of which waiting for acknowledgements |",
        "|---|---:|---:|",
    ]
    for route in ROUTES:
        lines.append(f"| {route} | {_server_side(moved[route])} |")
    lines += ["", _reading(busy), ""]
    return "\n".join(lines)


def _row(where: str, what: str, idle: list[float], busy: list[float]) -> str:
    return (
        f"| {where} | {what} | {percentile(idle, 50):.1f} / {percentile(idle, 99):.1f} | "
        f"{len(busy)} | {percentile(busy, 50):.1f} | {percentile(busy, 90):.1f} | "
        f"{percentile(busy, 99):.1f} | {max(busy):.1f} |"
    )


def _server_side(moved: dict[str, float]) -> str:
    """Mean admin request time and mean invalidation wait, ms ("-" when none)."""
    sums = [v for k, v in moved.items() if k.startswith("admin ") and k.endswith("_sum")]
    counts = [v for k, v in moved.items() if k.startswith("admin ") and k.endswith("_count")]
    wait_n = moved.get("invalidation_wait_count", 0.0)

    def mean(total: float, n: float) -> str:
        return f"{1e3 * total / n:.1f}" if n else "-"

    request = mean(sum(sums), sum(counts))
    return f"{request} | {mean(moved.get('invalidation_wait_sum', 0.0), wait_n)}"


def _reading(busy: Timings) -> str:
    """One sentence: the changes' loaded p99 on each route against the target and the floor
    of a request doing nothing through the same route."""
    parts = []
    for route in ROUTES:
        changes = [ms for kind in scale_load.KINDS for ms in busy[(route, kind)]]
        p99 = percentile(changes, 99)
        floor = percentile(busy[(route, "GET /healthz")], 99)
        verdict = "met" if p99 <= TARGET_MS else "missed"
        parts.append(
            f"through the {route} every change's p99 is {p99:.1f} ms (target "
            f"{TARGET_MS:.0f}: {verdict}), where a `/healthz` doing nothing has p99 "
            f"{floor:.1f} ms"
        )
    return "Reading: " + "; ".join(parts) + "."


def _loads(values: Any) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
