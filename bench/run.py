"""Verification throughput, side by side with a PyJWT baseline (median of several runs).

Usage: ``make bench`` or ``.venv/bin/python bench/run.py [--seconds S] [--runs N]``.
Needs ``TENANTAUTH_TEST_DATABASE_URL`` / ``TENANTAUTH_TEST_REDIS_URL`` (``make bench`` sets
them) for the PostgreSQL + Redis rows; creates and drops its own database, uses Redis DB 12.

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
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import jwt as pyjwt
import psycopg
import redis
from psycopg import sql

from tenantauth.app import build_services, create_app
from tenantauth.domain import tenants
from tenantauth.domain.services import Services
from tenantauth.domain.tokens import TokenRequest, issue_token
from tenantauth.errors import InvalidTokenError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support import DATABASE_URL, REDIS_URL, Backend, make_settings

BENCH_REDIS_DB = 12


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
    key = svc.keys.signing_key("bench")
    assert key is not None
    return token, key


#: Enough fresh ids that none repeats within one row's runs at the rates seen here.
UNKNOWN_TOKENS = 60_000


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


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one run")
    parser.add_argument("--runs", type=int, default=5, help="runs per row (median reported)")
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        embedded = Backend("sqlite", f"sqlite:///{state / 'bench.db'}", None)
        svc = build_services(make_settings(embedded, state))
        svc.storage.migrate()  # type: ignore[attr-defined]
        token, key = prepared(svc)
        aud, iss = svc.tokens.default_audience, svc.tokens.issuer

        def baseline() -> object:
            return pyjwt.decode(token, key, algorithms=["HS256"], audience=aud, issuer=iss)

        rows.append(
            ("pyjwt.decode (baseline, no lookup)", median_rate(baseline, args.seconds, args.runs))
        )
        rows.append(
            (
                "verifier (embedded: SQLite, no cache)",
                median_rate(lambda: svc.verifier.verify(token), args.seconds, args.runs),
            )
        )
        svc.close()
        with postgres_database() as pg_url:
            redis_url = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{BENCH_REDIS_DB}"))
            redis.Redis.from_url(redis_url).flushdb()
            backend = Backend("postgres", pg_url, redis_url)
            app = create_app(make_settings(backend, state))
            svc = app.extensions["tenantauth"]["services"]
            token, _ = prepared(svc)
            rows.append(
                (
                    "verifier (PostgreSQL + warm Redis)",
                    median_rate(lambda: svc.verifier.verify(token), args.seconds, args.runs),
                )
            )
            unknown = itertools.cycle(unknown_tenant_tokens(token, UNKNOWN_TOKENS))
            rows.append(
                (
                    "  rejected: unknown tenant ids, new each call",
                    median_rate(lambda: rejected(svc, next(unknown)), args.seconds, args.runs),
                )
            )
            forged = token.rsplit(".", 1)[0] + "." + "A" * 43
            rows.append(
                (
                    "  rejected: bad signature of a real tenant",
                    median_rate(lambda: rejected(svc, forged), args.seconds, args.runs),
                )
            )
            client = app.test_client()
            headers = {"Authorization": f"Bearer {token}"}

            def http_verify() -> object:
                response = client.get("/v1/verify", headers=headers)
                assert response.status_code == 200
                return response

            rows.append(
                (
                    "GET /v1/verify via Flask test client",
                    median_rate(http_verify, args.seconds, args.runs),
                )
            )
            svc.close()
    base = rows[0][1]
    print(f"\n{'what':45} {'ops/s (median of ' + str(args.runs) + ')':>22} {'vs baseline':>12}")
    for name, value in rows:
        print(f"{name:45} {value:22,.0f} {value / base:11.2f}x")


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
