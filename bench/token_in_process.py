"""Issue 14: CPU per ``client_credentials`` issuance in process, by layer (PostgreSQL + Redis).

Usage: ``python bench/token_in_process.py [--calls N] [--runs R]`` with the test services'
environment (``TENANTAUTH_TEST_DATABASE_URL`` / ``TENANTAUTH_TEST_REDIS_URL``). Builds the app as
``tenantauth serve`` does (metrics on, INFO JSON request lines, to /dev/null), seeds one tenant
and client through the admin API, then alternates, ``R`` times, ``N`` calls of each row:

- ``grant_token``: the domain call alone (limiter check, one storage read, HMAC, mint);
- ``app.wsgi_app``: the whole WSGI app with a prepared environ, as gunicorn calls it (the
  request is answered by the lean path, api/lean_token.py, when the app has one);
- ``Flask``: the same environ given to the Flask app behind the lean path(s).

Prints process CPU (``time.process_time``: every thread, the log writer's included) and wall
time per call, medians over the runs: CPU is what a 2-core server runs out of, and what a
shared machine distorts least.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import claimed_redis  # bench/common.py
from run import postgres_database  # bench/run.py
from tests.support import ADMIN_TOKEN, Backend, make_settings

from tenantauth.app import create_app
from tenantauth.domain.oauth.grants import GrantRequest, grant_token
from tenantauth.domain.oauth.oauth import ClientCredentials

TENANT = "bench-issuance"
FORM = b"grant_type=client_credentials&scope=read"


def seed(app: Any) -> tuple[str, str]:
    """Create the tenant and a client allowed client_credentials; return its id and secret."""
    client = app.test_client()
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    made = client.post("/v1/admin/tenants", json={"id": TENANT, "name": TENANT}, headers=admin)
    assert made.status_code == 201, made.data
    body = {"name": "bench", "scopes": ["read"], "grant_types": ["client_credentials"]}
    made = client.post(f"/v1/admin/tenants/{TENANT}/clients", json=body, headers=admin)
    assert made.status_code == 201, made.data
    return made.json["client_id"], made.json["client_secret"]


def environ_factory(client_id: str, secret: str) -> Callable[[], dict[str, Any]]:
    """Return a function building the environ gunicorn would pass for one token request."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": f"/v1/tenants/{TENANT}/token",
        "QUERY_STRING": "",
        "RAW_URI": f"/v1/tenants/{TENANT}/token",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(FORM)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_AUTHORIZATION": f"Basic {basic}",
        "HTTP_USER_AGENT": "wrk",
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }

    def make() -> dict[str, Any]:
        return {**base, "wsgi.input": io.BytesIO(FORM)}

    return make


def per_call(fn: Callable[[], object], calls: int) -> tuple[float, float]:
    """Run ``fn`` ``calls`` times; return (CPU µs, wall µs) per call."""
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        fn()
    return (
        (time.process_time() - cpu) / calls * 1e6,
        (time.perf_counter() - wall) / calls * 1e6,
    )


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    real_stdout = sys.stdout
    sys.stdout = Path(os.devnull).open("w")  # noqa: SIM115 - the request lines' stream
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as pg, claimed_redis() as rd:
        settings = make_settings(
            Backend("postgres", pg, rd), Path(tmp), log_level="INFO", log_format="json"
        )
        app = create_app(settings)
        svc = app.extensions["tenantauth"]["services"]
        client_id, secret = seed(app)
        creds = ClientCredentials(client_id, secret, "client_secret_basic")
        grant = GrantRequest("client_credentials", scope="read")
        make = environ_factory(client_id, secret)
        statuses: list[str] = []

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            statuses.append(status)

        flask = app.wsgi_app
        while hasattr(flask, "_app"):  # the lean paths keep the app they hand requests to
            flask = flask._app
        rows: dict[str, Callable[[], object]] = {
            "grant_token (domain)": lambda: grant_token(svc, TENANT, creds, grant, "127.0.0.1"),
            "app.wsgi_app": lambda: b"".join(app.wsgi_app(make(), start_response)),
            "Flask": lambda: b"".join(flask(make(), start_response)),
        }
        for fn in rows.values():
            per_call(fn, 100)  # warm: pools, caches, imports
        got: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(args.runs):
            for name, fn in rows.items():
                got[name].append(per_call(fn, args.calls))
        assert set(statuses) == {"200 OK"}, set(statuses)
        svc.close()
    sys.stdout = real_stdout
    print(f"{args.runs} alternating runs of {args.calls} calls; medians (range) per call")
    for name, values in got.items():
        cpu = sorted(v[0] for v in values)
        wall = sorted(v[1] for v in values)
        print(
            f"{name:24} CPU {statistics.median(cpu):7.0f} µs ({cpu[0]:.0f}-{cpu[-1]:.0f})"
            f"   wall {statistics.median(wall):7.0f} µs ({wall[0]:.0f}-{wall[-1]:.0f})"
        )


if __name__ == "__main__":
    main()
