"""Issue 14: gunicorn against granian serving tenantauth's GET /v1/verify, and their ceilings.

Usage: ``make bench-servers [ARGS=...]`` or ``python bench/servers.py [--quick] [--runs N]
[--seconds S] [--out results.json]`` with granian installed in the interpreter's environment
(it is not a tenantauth dependency) and ``TENANTAUTH_TEST_DATABASE_URL`` /
``TENANTAUTH_TEST_REDIS_URL`` set (``make bench-servers`` sets them).

Three workloads, each served by both servers with the same worker count (one per core):

- ``prod``: tenantauth in production mode (PostgreSQL + Redis: one Redis round trip per
  verify), metrics and request log lines on as they ship, 100 tenants seeded through the
  admin API (bench/verify_http.py's ``seed``), the tokens rotating in wrk's Lua script;
- ``embedded``: tenantauth in embedded mode (SQLite, no Redis), metrics and logs on: a verify
  of ~50 µs of in-process work and no network round trip, standing in for the verify path
  once it answers from memory (the lease protocol);
  (``--verify-memory``: with ``TENANTAUTH_VERIFY_MEMORY=true``, verify answers from the
  worker's memory, no Redis round trip);
- ``trivial``: a WSGI app answering 200 at once (bench/trivial_app.py): the server's own
  ceiling on this machine.

gunicorn runs as ``tenantauth serve`` runs it (tenantauth.gunicorn_conf: gthread, 4 threads,
its hooks), and once more with ``TENANTAUTH_THREADS=8``; granian through bench/granian_serve.py (its hooks' stand-ins, listed there) with
``--blocking-threads`` 1, 4 and 8. After a warm-up run each, ``runs`` rounds of
``wrk -t2 -c32 -d{seconds}s --latency`` visit every contender once, the order rotating by
round; the table gives medians and min–max. Any non-2xx response voids the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import verify_http  # bench/verify_http.py
from common import claimed_redis, machine, rotating_script, stats, wrk
from run import postgres_database
from tests.e2e.harness import HOST, call, free_port, scrubbed_environ, start_server, wait_ready
from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY_B64

BENCH = Path(__file__).resolve().parent
GRANIAN_THREADS = (1, 4, 8)


@dataclass
class Contender:
    """One server answering one workload on ``port``."""

    workload: str
    server: str
    port: int


def granian(
    name: str, app: str, env: dict[str, str], cfg: verify_http.Settings, threads: int
) -> verify_http.Process:
    """Start bench/granian_serve.py serving ``app`` (not waiting); return the process."""
    env = {**env, "PORT": str(free_port()), "PYTHONPATH": str(BENCH)}
    argv = [sys.executable, str(BENCH / "granian_serve.py"), "--app", app]
    argv += ["--port", env["PORT"], "--workers", str(cfg.workers)]
    argv += ["--blocking-threads", str(threads)]
    return verify_http.spawn(name, argv, env, cfg.tmp, BENCH)


def trivial_gunicorn(env: dict[str, str], cfg: verify_http.Settings) -> verify_http.Process:
    """Start gunicorn with tenantauth's configuration serving bench/trivial_app.py."""
    env = {**env, "PORT": str(free_port())}
    argv = [sys.executable, "-m", "gunicorn", "-c", "python:tenantauth.gunicorn_conf"]
    argv += ["--bind", f"{HOST}:{env['PORT']}", "--workers", str(cfg.workers), "trivial_app:app"]
    return verify_http.spawn("trivial-gunicorn", argv, env, cfg.tmp, BENCH)


def embedded_environ(state: Path) -> dict[str, str]:
    """Embedded mode (SQLite in ``state``), secrets given, metrics and logs as they ship."""
    return scrubbed_environ(
        TENANTAUTH_STATE_DIR=str(state),
        TENANTAUTH_MASTER_KEY=MASTER_KEY_B64,
        TENANTAUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        TENANTAUTH_ISSUER=ISSUER,
        TENANTAUTH_LOG_FORMAT="json",
    )


def start_tenantauth(
    stack: ExitStack, cfg: verify_http.Settings, workload: str, env: dict[str, str], redis_url: str
) -> tuple[list[Contender], list[str]]:
    """Start ``tenantauth serve`` (gunicorn) in ``env``, seed it, then granian on the same
    database with each of GRANIAN_THREADS; return the contenders and the tokens."""
    served = {**env, "TENANTAUTH_METRICS_PORT": str(free_port())}
    ours = start_server(cfg.tmp, f"{workload}-gunicorn", served, workers=cfg.workers)
    stack.callback(ours.stop)
    wait_ready(ours, timeout=verify_http.READY_SECONDS)
    found = [Contender(workload, "gunicorn (tenantauth serve)", ours.port)]
    tokens = verify_http.seed(ours.port, redis_url, cfg.tenants)
    more = {**served, "TENANTAUTH_METRICS_PORT": str(free_port()), "TENANTAUTH_THREADS": "8"}
    eight = start_server(cfg.tmp, f"{workload}-gunicorn-8", more, workers=cfg.workers)
    stack.callback(eight.stop)
    wait_ready(eight, timeout=verify_http.READY_SECONDS)
    found.append(Contender(workload, "gunicorn, TENANTAUTH_THREADS=8", eight.port))
    for threads in GRANIAN_THREADS:
        # Migrated by `serve` above; the workers must not migrate again (as serve sets it).
        own = {
            **env,
            "TENANTAUTH_AUTO_MIGRATE": "false",
            "TENANTAUTH_METRICS_PORT": str(free_port()),
        }
        proc = granian(f"{workload}-granian-{threads}", "tenantauth.wsgi:app", own, cfg, threads)
        stack.callback(proc.stop)
        verify_http.wait_up(proc)
        found.append(Contender(workload, f"granian, {threads} blocking threads", proc.port))
    return found, tokens


@contextmanager
def contenders(
    cfg: verify_http.Settings, pg_url: str, redis_url: str, *, memory: bool, only_prod: bool
) -> Iterator[tuple[list[Contender], dict[str, list[str]]]]:
    """Start every contender and seed both tenantauth backends; yield the contenders and the
    tokens of each workload. Every process started is stopped on the way out."""
    with ExitStack() as stack:
        found: list[Contender] = []
        tokens: dict[str, list[str]] = {}
        prod = verify_http.tenantauth_environ(pg_url, redis_url)
        # The production default verifies from memory; without --verify-memory, the exact path.
        prod["TENANTAUTH_VERIFY_MEMORY"] = "true" if memory else "false"
        modes = {"prod": prod, "embedded": embedded_environ(cfg.tmp / "embedded")}
        for workload, env in modes.items():
            started, tokens[workload] = start_tenantauth(stack, cfg, workload, env, redis_url)
            found += started
            if only_prod:
                yield found, tokens
                return
        plain = scrubbed_environ(TENANTAUTH_METRICS_PORT="0")
        procs = [("gunicorn (tenantauth conf)", trivial_gunicorn(plain, cfg))]
        for threads in (1, 4):
            proc = granian(f"trivial-granian-{threads}", "trivial_app:app", plain, cfg, threads)
            procs.append((f"granian, {threads} blocking threads", proc))
        for server, proc in procs:
            stack.callback(proc.stop)
            verify_http.wait_up(proc)
            found.append(Contender("trivial", server, proc.port))
        tokens["trivial"] = tokens["prod"][:1]
        yield found, tokens


def measure(
    cfg: verify_http.Settings, found: list[Contender], tokens: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Check each contender accepts its workload's tokens, warm each, then ``cfg.runs``
    rounds of one wrk run each in a rotating order; return one summary per contender."""
    scripts = {w: rotating_script(cfg.tmp / f"{w}.lua", t) for w, t in tokens.items()}
    for c in found:
        reply = call(c.port, "GET", "/v1/verify", token=tokens[c.workload][0])
        assert reply.status == 200, (c, reply)

    def run(c: Contender, seconds: float) -> dict[str, float]:
        url = f"http://{HOST}:{c.port}/v1/verify"
        script = scripts[c.workload]
        return wrk(url, seconds, threads=cfg.threads, connections=cfg.connections, script=script)

    for c in found:
        run(c, cfg.warm_seconds)
    runs: list[list[dict[str, float]]] = [[] for _ in found]
    loads: list[float] = []
    for round_ in range(cfg.runs):
        shift = round_ % len(found)
        for i in [*range(shift, len(found)), *range(shift)]:
            runs[i].append(run(found[i], cfg.seconds))
            loads.append(os.getloadavg()[0])
    keys = ("rps", "p50_ms", "p99_ms")
    return [
        {
            "workload": c.workload,
            "server": c.server,
            **{key: stats([r[key] for r in got]) for key in keys},
            "non_2xx": sum(r["non_2xx"] for r in got),
            "socket_errors": sum(r["socket_errors"] for r in got),
            "runs": got,
            "load_1min": loads,
        }
        for c, got in zip(found, runs, strict=True)
    ]


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: per workload and server, req/s and p99 (median, min–max), and the
    req/s ratio to gunicorn on the same workload."""
    base = {r["workload"]: r["rps"]["median"] for r in rows if r["server"].startswith("gunicorn (")}
    lines = [
        "| workload | server | req/s median (min–max) | ÷ gunicorn | p50 ms | "
        "p99 ms median (min–max) | non-2xx / socket errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rps, p99 = r["rps"], r["p99_ms"]
        lines.append(
            f"| {r['workload']} | {r['server']} | {rps['median']:,.0f} "
            f"({rps['min']:,.0f}–{rps['max']:,.0f}) | {rps['median'] / base[r['workload']]:.2f}x "
            f"| {r['p50_ms']['median']:.2f} | {p99['median']:.2f} "
            f"({p99['min']:.2f}–{p99['max']:.2f}) | {r['non_2xx']:.0f} / {r['socket_errors']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Start the contenders, measure, print the table (and write JSON with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s runs (a check)")
    parser.add_argument("--runs", type=int, default=3, help="wrk rounds (3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one wrk run")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    parser.add_argument("--verify-memory", action="store_true", help="TENANTAUTH_VERIFY_MEMORY")
    parser.add_argument("--only-prod", action="store_true", help="only the prod workload")
    args = parser.parse_args(argv)
    runs, seconds = (1, 3.0) if args.quick else (args.runs, args.seconds)
    started = machine()
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as pg_url,
        claimed_redis() as redis_url,
    ):
        cfg = verify_http.Settings(
            Path(tmp), seconds=seconds, runs=runs, warm_seconds=1.0 if args.quick else 2.0
        )
        opts = {"memory": args.verify_memory, "only_prod": args.only_prod}
        with contenders(cfg, pg_url, redis_url, **opts) as (found, tokens):
            rows = measure(cfg, found, tokens)
    loads = rows[0]["load_1min"]
    print(f"\n{runs} rounds of wrk -t2 -c32 -d{seconds:g}s --latency, {cfg.workers} workers each;")
    print(f"machine {started}; 1-min load during the runs {min(loads):.2f}–{max(loads):.2f}\n")
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps({"machine": started, "rows": rows}, indent=2))
    if sum(r["non_2xx"] for r in rows):
        raise SystemExit("non-2xx responses: the figures are void")


if __name__ == "__main__":
    main()
