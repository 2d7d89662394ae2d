"""What each way of protecting a service adds per request: latency, measured, not guessed.

Usage: ``make bench-protecting`` or ``.venv/bin/python bench/protecting.py [--requests N]
[--runs R]``. Starts a production-mode tenantauth (PostgreSQL + Redis, 2 workers), a recording
upstream, and the example nginx and Caddy configurations (examples/), seeds one tenant through
the admin API, then for each row sends N sequential requests on one kept-alive connection
(after a warm-up) and reports the median and p99 latency, the median over R runs.

Rows are end to end as the protected service's caller sees them; "added" is the row minus the
upstream reached directly. wrk-style load numbers belong to ``make bench`` (issue 14); this is
the single-request cost a team weighs when choosing (docs/protecting-services.md).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import redis

from tenantauth_client import TenantAuthClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import postgres_database  # bench/run.py
from tests.e2e.harness import HOST, Admin, production_environ, start_server, wait_ready
from tests.gateways.gateways import start_caddy, start_nginx
from tests.gateways.upstream import Upstream
from tests.support import REDIS_URL

BENCH_REDIS_DB = 11
NODE_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "node-express"
WARMUP = 200

Request = Callable[[http.client.HTTPConnection], int]


def get(path: str, headers: dict[str, str]) -> Request:
    """Return a request function: GET ``path``; returns the status."""

    def send(conn: http.client.HTTPConnection) -> int:
        conn.request("GET", path, headers=headers)
        with conn.getresponse() as response:
            response.read()
            return response.status

    return send


def post(path: str, body: bytes, headers: dict[str, str]) -> Request:
    """Return a request function: POST ``body`` to ``path``; returns the status."""

    def send(conn: http.client.HTTPConnection) -> int:
        conn.request("POST", path, body=body, headers=headers)
        with conn.getresponse() as response:
            response.read()
            return response.status

    return send


def latencies(port: int, request: Request, count: int) -> list[float]:
    """Send ``count`` requests on one kept-alive connection; return each one's seconds."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        for _ in range(WARMUP):
            assert request(conn) == 200
        out = []
        for _ in range(count):
            start = time.perf_counter()
            status = request(conn)
            out.append(time.perf_counter() - start)
            assert status == 200, status
        return out
    finally:
        conn.close()


def summary(samples: list[list[float]]) -> tuple[float, float]:
    """Return (median, p99) in ms: each the median over runs."""
    medians = [statistics.median(s) for s in samples]
    p99s = [sorted(s)[int(len(s) * 0.99) - 1] for s in samples]
    return statistics.median(medians) * 1e3, statistics.median(p99s) * 1e3


def resource_server_basic(admin: Admin) -> str:
    """Create a resource server allowed for acme; return its HTTP Basic credentials."""
    reply = admin._call(
        "POST", "/v1/admin/resource-servers", {"name": "bench", "tenants": ["acme"]}
    )
    assert reply.status == 201, reply
    created = reply.json()
    pair = f"{quote(created['id'], safe='')}:{quote(created['secret'], safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def client_rows(base_url: str, token: str) -> dict[str, Callable[[], object]]:
    """The Python client's rows (in-process calls: clients/python, installed by make venv)."""
    plain = TenantAuthClient(base_url)
    cached = TenantAuthClient(base_url, cache_ttl=5)
    return {
        "Python client verify (cache off)": lambda: plain.verify(token),
        "Python client verify (cache on, hit)": lambda: cached.verify(token),
    }


def start_express(tenantauth_port: int) -> tuple[subprocess.Popen[bytes], int] | None:
    """Start the example Express app (examples/node-express) in front of tenantauth; return
    it and its port, or None (said why) when node is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("not measured: node/npm not installed (make gateways installs them)")
        return None
    if not (NODE_EXAMPLE / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_EXAMPLE, check=True)
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = int(sock.getsockname()[1])
    env = {**os.environ, "TENANTAUTH_URL": f"http://{HOST}:{tenantauth_port}", "PORT": str(port)}
    proc = subprocess.Popen(
        ["node", "server.js"], cwd=NODE_EXAMPLE, env=env, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the Express example did not start")


def main() -> None:
    """Measure and print the table (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median reported)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, postgres_database() as pg_url, Upstream() as app:
        tmp_path = Path(tmp)
        redis_url = urlunsplit(urlsplit(REDIS_URL)._replace(path=f"/{BENCH_REDIS_DB}"))
        redis.Redis.from_url(redis_url).flushdb()
        env = production_environ(pg_url, redis_url, tmp_path / "access.log")
        env["TENANTAUTH_ACCESS_LOG"] = ""  # as `tenantauth serve` ships: no access log
        server = start_server(tmp_path, "tenantauth", env, workers=2)
        gateways = []
        express = None
        try:
            wait_ready(server)
            admin = Admin(server.port)
            admin.create_tenant("acme")
            token = admin.issue("acme")
            nginx = start_nginx(tmp_path, server.port, app.port)
            caddy = start_caddy(tmp_path, server.port, app.port)
            gateways = [nginx, caddy]
            bearer = {"Authorization": f"Bearer {token}"}
            body = json.dumps({"token": token}).encode()
            introspect = post(
                "/v1/introspect",
                urlencode({"token": token}).encode(),
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Authorization": resource_server_basic(admin),
                },
            )
            rows: dict[str, tuple[int, Request]] = {
                "upstream alone (no auth)": (app.port, get("/api/x", {})),
                "nginx auth_request → upstream": (nginx.port, get("/api/x", bearer)),
                "Caddy forward_auth → upstream": (caddy.port, get("/api/x", bearer)),
                "GET /v1/verify (direct)": (server.port, get("/v1/verify", bearer)),
                "POST /v1/verify (direct, JSON)": (
                    server.port,
                    post("/v1/verify", body, {"Content-Type": "application/json"}),
                ),
                "POST /v1/introspect (resource server, RFC 7662)": (server.port, introspect),
            }
            express = start_express(server.port)
            if express is not None:
                node_port = express[1]
                rows["Express, no middleware (/healthz)"] = (node_port, get("/healthz", {}))
                rows["Express + tenantAuth middleware"] = (node_port, get("/api/whoami", bearer))
            results = {
                name: summary([latencies(port, req, args.requests) for _ in range(args.runs)])
                for name, (port, req) in rows.items()
            }
            for name, call in client_rows(f"http://{HOST}:{server.port}", token).items():
                results[name] = summary([_timed(call, args.requests) for _ in range(args.runs)])
        finally:
            for gateway in gateways:
                gateway.stop()
            if express is not None:
                express[0].terminate()
                express[0].wait(10)
            server.stop()
    _print(results, args)


def _timed(call: Callable[[], object], count: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    out = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def _print(results: dict[str, tuple[float, float]], args: argparse.Namespace) -> None:
    baselines = {
        "nginx auth_request → upstream": "upstream alone (no auth)",
        "Caddy forward_auth → upstream": "upstream alone (no auth)",
        "Express + tenantAuth middleware": "Express, no middleware (/healthz)",
    }
    print(f"\n{args.requests} sequential requests x {args.runs} runs, one connection each\n")
    print("| path | median ms | p99 ms | added (median) | compared with |")
    print("|---|---:|---:|---:|---|")
    for name, (median, p99) in results.items():
        base = baselines.get(name)
        added = f"{median - results[base][0]:+.2f}" if base in results else "—"
        print(f"| {name} | {median:.3f} | {p99:.3f} | {added} | {base or '—'} |")


if __name__ == "__main__":
    main()
