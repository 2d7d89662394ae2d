"""Issue 14's benchmark: verification in process and over HTTP, against its baselines.

Usage: ``make bench [ARGS=--quick]`` or ``.venv/bin/python bench/run.py [--quick] [--no-http]
[--http-seconds S] [--http-runs N] [--tenants T] [--no-write] [--out results.json]``. Needs
``TENANTAUTH_TEST_DATABASE_URL`` / ``TENANTAUTH_TEST_REDIS_URL`` (``make bench`` sets them),
``wrk``, node and npm (``make bench`` installs them from Debian if missing); creates and drops
its own database and claims free Redis DBs as the test suite does (bench/common.py).

Over HTTP (bench/verify_http.py): tenantauth against the naive Python and the Node baselines
(bench/baselines/), the same tokens and wrk settings, alternating; the table with ratios to
each baseline is printed and written, with the machine and the date, to docs/performance.md,
and drawn in docs/performance-verify.svg (bench/report.py). ``make bench`` takes about 5
minutes, ``--quick`` under 2.

In-process rows:
Rows:
- ``pyjwt.decode``: the baseline a hand-rolled PyJWT setup pays per token (secret in hand, no
  lookup, no revocation check at all).
- ``verifier (embedded)``: our full verification on SQLite with no cache (one SELECT per token).
- ``verifier (pg+redis)``: our full verification, warm Redis (one GET per token).
- ``GET /v1/verify (test client)``: the same through Flask routing and response building.
- ``unknown tenant ids``: tokens of never-seen tenant ids, a new id on every call (a flood
  no per-id negative cache can absorb; issue 4, S11), rejected.
- ``bad signature``: the control for it, a real tenant's token re-signed with a wrong key.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt as pyjwt
import psycopg
from flask import Flask
from psycopg import sql

from tenantauth.app import create_app
from tenantauth.bootstrap import build_services
from tenantauth.domain import tenants
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import PARSED_MEMO_MAX, TokenRequest, issue_token
from tenantauth.errors import InvalidTokenError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # bench/common.py
import report  # bench/report.py
import verify_http  # bench/verify_http.py
from common import claimed_redis
from tests.support import DATABASE_URL, Backend, make_settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Return calls per second of fn over about `seconds`."""
    calls, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            fn()
        calls += 200
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def median_rate(fn: Callable[[], object], seconds: float, runs: int) -> float:
    """Median of `runs` measurements after one warm-up."""
    rate(fn, min(seconds, 0.2))
    return statistics.median(rate(fn, seconds) for _ in range(runs))


def prepared(svc: Services) -> tuple[str, bytes]:
    """Create tenant bench, return a token and its plaintext key."""
    tenants.create_tenant(svc, "bench", "Bench")
    token = issue_token(
        svc.storage, svc.keyring, svc.tokens, svc.clock, TokenRequest("bench", "user-1")
    ).access_token
    key = svc.keys.verification_key("bench")
    assert key is not None
    assert isinstance(key.material, bytes)  # bench is an HS256 tenant
    return token, key.material


#: Fresh ids per second of measuring: enough that none repeats within one row's runs at the
#: rates seen here (60,000 for the default 5 runs of 1 s).
UNKNOWN_TOKENS_PER_SECOND = 12_000


def unknown_tenant_tokens(template: str, count: int) -> list[str]:
    """``count`` tokens like ``template`` but each of its own random, non-existent tenant."""
    claims = pyjwt.decode(template, options={"verify_signature": False})
    tokens = []
    for _ in range(count):
        tenant_id = "ghost-" + secrets.token_hex(8)
        payload = {**claims, "tid": tenant_id}
        tokens.append(
            pyjwt.encode(payload, b"k" * 32, algorithm="HS256", headers={"kid": tenant_id})
        )
    return tokens


def rejected(svc: Services, token: str) -> None:
    """Verify a token that must fail."""
    try:
        svc.verifier.verify(token)
    except InvalidTokenError:
        return
    raise AssertionError("a token that must fail was accepted")


def in_process(seconds: float, runs: int, redis_url: str) -> list[tuple[str, float]]:
    """Measure the in-process rows (see the module docstring); return (name, ops/s) each."""
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        embedded = Backend("sqlite", f"sqlite:///{state / 'bench.db'}", None)
        svc = build_services(make_settings(embedded, state))
        svc.storage.migrate()  # type: ignore[attr-defined]
        token, key = prepared(svc)
        aud, iss = svc.tokens.default_audience, svc.tokens.issuer_for("bench")

        def baseline() -> object:
            return pyjwt.decode(token, key, algorithms=["HS256"], audience=aud, issuer=iss)

        rows.append(("pyjwt.decode (baseline, no lookup)", median_rate(baseline, seconds, runs)))
        rows.append(
            (
                "verifier (embedded: SQLite, no cache)",
                median_rate(lambda: svc.verifier.verify(token), seconds, runs),
            )
        )
        svc.close()
        with postgres_database() as pg_url:
            app = create_app(make_settings(Backend("postgres", pg_url, redis_url), state))
            svc = app.extensions["tenantauth"]["services"]
            rows += pg_rows(app, svc, seconds, runs)
            svc.close()
            settings = make_settings(Backend("postgres", pg_url, redis_url), state)
            svc = build_services(settings, verify_memory=True)
            rows += memory_row(svc, seconds, runs)
            svc.close()
    return rows


def memory_row(svc: Services, seconds: float, runs: int) -> list[tuple[str, float]]:
    """The verifier answering from this process's memory (TENANTAUTH_VERIFY_MEMORY): warm
    until the tenant is held, so the rows measure that path and nothing else. Two rows: one
    token again and again (its parse memoised, as for a client that reuses its token), and
    more distinct tokens in turn than the parse memo keeps (every call parses)."""
    tenants.create_tenant(svc, "bench-memory", "Bench")

    def issue(subject: str) -> str:
        request = TokenRequest("bench-memory", subject)
        return issue_token(svc.storage, svc.keyring, svc.tokens, svc.clock, request).access_token

    token = issue("user-1")
    deadline = time.monotonic() + 10
    while not svc.keys.held("bench-memory"):
        assert time.monotonic() < deadline, "the tenant never reached memory"
        svc.verifier.verify(token)
        time.sleep(0.01)
    rate = median_rate(lambda: svc.verifier.verify(token), seconds, runs)
    fresh = itertools.cycle([issue(f"user-{n}") for n in range(PARSED_MEMO_MAX + 1000)])
    cold = median_rate(lambda: svc.verifier.verify(next(fresh)), seconds, runs)
    assert svc.keys.held("bench-memory"), "the tenant left memory while measuring"
    return [
        ("verifier (PostgreSQL + Redis, from memory)", rate),
        (f"  from memory, {PARSED_MEMO_MAX + 1000:,} tokens in turn (none memoised)", cold),
    ]


def pg_rows(app: Flask, svc: Services, seconds: float, runs: int) -> list[tuple[str, float]]:
    """The PostgreSQL + Redis rows: verifier, rejections, the Flask test client."""
    token, _ = prepared(svc)
    count = max(1_000, int(UNKNOWN_TOKENS_PER_SECOND * seconds * runs))
    unknown = itertools.cycle(unknown_tenant_tokens(token, count))
    forged = token.rsplit(".", 1)[0] + "." + "A" * 43
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def http_verify() -> object:
        response = client.get("/v1/verify", headers=headers)
        assert response.status_code == 200
        return response

    measured: list[tuple[str, Callable[[], object]]] = [
        ("verifier (PostgreSQL + warm Redis)", lambda: svc.verifier.verify(token)),
        ("  rejected: unknown tenant ids, new each call", lambda: rejected(svc, next(unknown))),
        ("  rejected: bad signature of a real tenant", lambda: rejected(svc, forged)),
        ("GET /v1/verify via Flask test client", http_verify),
    ]
    return [(name, median_rate(fn, seconds, runs)) for name, fn in measured]


def print_in_process(rows: list[tuple[str, float]], runs: int) -> None:
    """Print the in-process rows with their ratio to the first (PyJWT) row."""
    base = rows[0][1]
    print(f"\n{'what':45} {'ops/s (median of ' + str(runs) + ')':>22} {'vs baseline':>12}")
    for name, value in rows:
        print(f"{name:45} {value:22,.0f} {value / base:11.2f}x")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``--quick`` shortens every run (under 2 minutes in all)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a check, not a result)")
    parser.add_argument("--seconds", type=float, help="length of one in-process run (1)")
    parser.add_argument("--runs", type=int, help="in-process runs per row, median reported (5)")
    parser.add_argument("--http-seconds", type=float, help="length of one wrk run (10)")
    parser.add_argument("--http-runs", type=int, help="wrk rounds, every server once each (5)")
    parser.add_argument("--tenants", type=int, default=100, help="tenants, one token each")
    parser.add_argument("--no-http", action="store_true", help="only the in-process rows")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/performance*")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    quick = {"seconds": 0.3, "runs": 3, "http_seconds": 3.0, "http_runs": 1}
    full = {"seconds": 1.0, "runs": 5, "http_seconds": 10.0, "http_runs": 5}
    for name, value in (quick if args.quick else full).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> None:
    """Measure in process and over HTTP; print the tables; write docs/performance.md and
    docs/performance-verify.svg (unless --no-write or --no-http)."""
    args = parse_args(argv)
    started = report.today()
    host = common.machine()
    with claimed_redis() as redis_url:
        rows = in_process(args.seconds, args.runs, redis_url)
    print_in_process(rows, args.runs)
    if args.no_http:
        return
    with (
        tempfile.TemporaryDirectory() as tmp,
        postgres_database() as pg_url,
        claimed_redis() as redis_url,
        claimed_redis() as baseline_redis_url,
    ):
        cfg = verify_http.Settings(
            Path(tmp),
            seconds=args.http_seconds,
            runs=args.http_runs,
            warm_seconds=1.0 if args.quick else 2.0,
            tenants=args.tenants,
        )
        http, issued = verify_http.compare(cfg, pg_url, redis_url, baseline_redis_url)
    print(f"\nOver HTTP ({cfg.runs} rounds of wrk -t2 -c32 -d{cfg.seconds:g}s, alternating):\n")
    print(report.http_table(http))
    print("\nIssuance (tenantauth):\n")
    print(report.issuance_table(issued))
    non_2xx = sum(row["non_2xx"] for row in [*http, *issued])
    meta = describe(args, cfg, host, started)
    if args.out:
        results = {"meta": meta, "in_process": rows, "http": http, "issuance": issued}
        args.out.write_text(json.dumps(results, indent=2))
    if non_2xx:
        raise SystemExit(f"{non_2xx:.0f} non-2xx responses: the figures are void, not written")
    if not args.no_write:
        write_docs(http, issued, rows, meta)


def describe(
    args: argparse.Namespace, cfg: verify_http.Settings, host: dict[str, Any], date: str
) -> dict[str, Any]:
    """What the doc says about the run: date, machine (and the load average now, after
    measuring), versions, settings."""
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    settings = {k: v for k, v in vars(cfg).items() if k != "tmp"}
    return {
        "date": date,
        "machine": host,
        "loadavg_end": os.getloadavg(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "wrk": wrk.stdout.splitlines()[0].split(" Copyright")[0] if wrk.stdout else "wrk",
        "http": settings,
        "make_args": " ARGS=--quick" if args.quick else "",
        "in_process_args": f"--seconds {args.seconds:g} --runs {args.runs}",
        "in_process_runs": args.runs,
    }


def write_docs(
    http: list[dict[str, Any]],
    issued: list[dict[str, Any]],
    rows: list[tuple[str, float]],
    meta: dict[str, Any],
) -> None:
    """Write docs/performance.md and docs/performance-verify.svg."""
    m = meta["machine"]
    caption = (
        f"{meta['date']}; {m['cpu_model']}, {m['cores']} cores, shared by wrk and the servers "
        f"(compare ratios, not absolutes); median of {meta['http']['runs']} wrk runs each"
    )
    (DOCS / "performance.md").write_text(
        report.document(http, issued, rows, meta), encoding="utf-8"
    )
    (DOCS / "performance-verify.svg").write_text(report.svg(http, caption), encoding="utf-8")
    print(f"\nwrote {DOCS / 'performance.md'} and {DOCS / 'performance-verify.svg'}")


class postgres_database:  # noqa: N801 - used as a context manager, reads like a function
    """A throwaway database on the test server."""

    def __enter__(self) -> str:
        self.name = f"tenantauth_bench_{int(time.time())}"
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{self.name}"))

    def __exit__(self, *exc: object) -> None:
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            stmt = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(stmt.format(sql.Identifier(self.name)))


if __name__ == "__main__":
    main()
