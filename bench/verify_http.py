"""Issue 14: GET /v1/verify over HTTP, tenantauth against its baselines, the same tokens each.

Contenders (each on loopback, ``workers`` processes, i.e. one per core by default):
- ``tenantauth``: ``tenantauth serve`` in production mode (PostgreSQL + Redis) with what ships
  on by default: granian workers x TENANTAUTH_BLOCKING_THREADS (8), metrics, INFO request log
  lines, verifying from memory (docs/design.md).
- ``tenantauth (exact path)``: the same with ``TENANTAUTH_VERIFY_MEMORY=false``: one Redis
  round trip per verification, the default before issue 14; on the same database and Redis.
- ``tenantauth (gunicorn)``: the default configuration served by ``tenantauth serve --server
  gunicorn`` (``TENANTAUTH_SERVER=gunicorn``; gthread workers x TENANTAUTH_THREADS (4)), the
  other supported server (the default before session 8).
- ``naive Python``: bench/baselines/naive (Flask + PyJWT ``decode`` + redis-py ``GET``),
  gunicorn sync workers.
- ``node (string)`` / ``node (KeyObject)``: bench/baselines/node (cluster, Express,
  jsonwebtoken, node-redis ``GET``), the secret handed to jsonwebtoken as a string or a KeyObject.

Seeding goes through tenantauth's admin API: ``tenants`` tenants, each created with an imported
secret (48 random ASCII characters, so that its bytes and its string are the same key for every
contender) and one token minted by tenantauth. The secrets are written to the baselines' Redis
DB under ``tenant-secret:{kid}``. Every contender then answers the same wrk runs: a Lua script
rotating among the tokens, ``wrk -t2 -c32 -d{seconds}s --latency``, in rounds that visit every
contender in a rotated order (alternating, so the shared machine's drift spreads over all).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import issuance  # bench/issuance.py
import redis
from common import rotating_script, stats, wrk
from tests.e2e.harness import (
    HOST,
    Admin,
    Reply,
    call,
    free_port,
    scrubbed_environ,
    start_server,
    wait_ready,
)
from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY_B64

BASELINES = Path(__file__).resolve().parent / "baselines"
NODE_DIR = BASELINES / "node"
NAIVE_DIR = BASELINES / "naive"
SECRET_PREFIX = "tenant-secret:"
READY_SECONDS = 30.0
TENANTAUTH_EXACT = "tenantauth (exact path)"
TENANTAUTH_GUNICORN = "tenantauth (gunicorn)"
TENANTAUTH, NAIVE, NODE_STRING, NODE_KEYOBJECT = (
    "tenantauth",
    "naive Python",
    "node (string)",
    "node (KeyObject)",
)


@dataclass
class Settings:
    """What one comparison runs: wrk's length and rounds, tenants, workers, its files."""

    tmp: Path
    seconds: float = 10.0
    runs: int = 3
    warm_seconds: float = 2.0
    tenants: int = 100
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    threads: int = 2
    connections: int = 32


@dataclass
class Process:
    """A server process tree we started in its own session (a baseline)."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        """SIGTERM its process group; SIGKILL it if it has not exited after 10 s."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: only our processes
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def spawn(name: str, argv: list[str], env: Mapping[str, str], tmp: Path, cwd: Path) -> Process:
    """Start ``argv`` in a new session with its output in a file; return it (not yet ready)."""
    log = tmp / f"{name.replace(' ', '-').strip('()')}.log"
    port = int(env["PORT"])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, port, proc, log)


def wait_up(server: Process) -> None:
    """Wait for GET /readyz to answer 200; raise RuntimeError with the server's output if not."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline and server.proc.poll() is None:
        try:
            if call(server.port, "GET", "/readyz", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    output = server.log.read_text(errors="replace")
    raise RuntimeError(f"{server.name} did not become ready:\n{output}")


def npm_ci() -> None:
    """Install the Node baseline's packages (``npm ci``) unless node_modules matches the lock.

    Raises RuntimeError with the fix when node or npm is missing, CalledProcessError if npm fails.
    """
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed: `make gateways` installs them (Debian)")
    lock = (NODE_DIR / "package-lock.json").read_bytes()
    stamp = NODE_DIR / "node_modules" / ".tenantauth-npm-ci"
    if stamp.is_file() and stamp.read_bytes() == lock:
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        timeout=300,
    )
    stamp.write_bytes(lock)


def start_baselines(cfg: Settings, redis_url: str) -> dict[str, Process]:
    """Start the naive Python and both Node baselines (not waiting); return them by name."""
    shared = {"REDIS_URL": redis_url, "ISSUER": ISSUER, "HOST": HOST}
    naive_env = scrubbed_environ(
        PORT=str(free_port()), BENCH_REDIS_URL=redis_url, BENCH_ISSUER=ISSUER
    )
    gunicorn = [sys.executable, "-m", "gunicorn", "-k", "sync", "-w", str(cfg.workers)]
    gunicorn += ["--bind", f"{HOST}:{naive_env['PORT']}", "app:app"]
    servers = {NAIVE: spawn(NAIVE, gunicorn, naive_env, cfg.tmp, NAIVE_DIR)}
    for name, form in ((NODE_STRING, "string"), (NODE_KEYOBJECT, "keyobject")):
        env = scrubbed_environ(
            PORT=str(free_port()), SECRET_FORM=form, WORKERS=str(cfg.workers), **shared
        )
        servers[name] = spawn(name, ["node", "server.js"], env, cfg.tmp, NODE_DIR)
    return servers


#: The worker pids of each tenantauth server by row name, while ``servers`` runs: each run
#: records how the work was split between them (bench/common.py ``wrk``).
WORKERS: dict[str, list[int]] = {}


def tenantauth_environ(pg_url: str, redis_url: str) -> dict[str, str]:
    """Production mode as it ships: no log level, access log or metrics setting of our own."""
    return scrubbed_environ(
        TENANTAUTH_DATABASE_URL=pg_url,
        TENANTAUTH_REDIS_URL=redis_url,
        TENANTAUTH_MASTER_KEY=MASTER_KEY_B64,
        TENANTAUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        TENANTAUTH_ISSUER=ISSUER,
        TENANTAUTH_AUTO_MIGRATE="true",
    )


@contextmanager
def servers(
    cfg: Settings, pg_url: str, redis_url: str, baseline_redis_url: str
) -> Iterator[dict[str, int]]:
    """Start all five contenders at once, wait until each is ready; yield their ports by name.
    Every process started is stopped on the way out."""
    npm_ci()
    with ExitStack() as stack:
        env = tenantauth_environ(pg_url, redis_url)
        ours = start_server(cfg.tmp, "tenantauth", env, workers=cfg.workers)
        stack.callback(ours.stop)
        gunicorn_env = {**env, "TENANTAUTH_SERVER": "gunicorn"}
        gunicorn = start_server(cfg.tmp, "tenantauth-gunicorn", gunicorn_env, workers=cfg.workers)
        stack.callback(gunicorn.stop)
        env = {**env, "TENANTAUTH_VERIFY_MEMORY": "false"}
        exact = start_server(cfg.tmp, "tenantauth-exact", env, workers=cfg.workers)
        stack.callback(exact.stop)
        baselines = start_baselines(cfg, baseline_redis_url)
        for server in baselines.values():
            stack.callback(server.stop)
        wait_ready(ours, timeout=READY_SECONDS)
        wait_ready(exact, timeout=READY_SECONDS)
        wait_ready(gunicorn, timeout=READY_SECONDS)
        for server in baselines.values():
            wait_up(server)
        ports = {TENANTAUTH: ours.port, TENANTAUTH_GUNICORN: gunicorn.port}
        for name, server in ((TENANTAUTH, ours), (TENANTAUTH_GUNICORN, gunicorn)):
            WORKERS[name] = sorted(server.pids)
        WORKERS[TENANTAUTH_EXACT] = sorted(exact.pids)
        yield (
            ports | {TENANTAUTH_EXACT: exact.port} | {name: s.port for name, s in baselines.items()}
        )


def ascii_secret() -> str:
    """48 random URL-safe ASCII characters: the same key as bytes (Python, KeyObject) and as a
    string (jsonwebtoken's string form hashes its UTF-8 bytes)."""
    return secrets.token_urlsafe(36)


def seed(port: int, baseline_redis_url: str, count: int) -> list[str]:
    """Create ``count`` tenants with imported secrets through tenantauth's admin API, mint one
    token each, write each secret to the baselines' Redis by kid; return the tokens."""
    admin, tokens = Admin(port), []
    store = redis.Redis.from_url(baseline_redis_url)
    try:
        for i in range(count):
            tenant, secret = f"bench-{i:06d}", ascii_secret()
            imported = base64.urlsafe_b64encode(secret.encode()).decode().rstrip("=")
            body = {"id": tenant, "name": tenant, "secret": imported}
            reply = call(port, "POST", "/v1/admin/tenants", token=ADMIN_TOKEN, body=body)
            assert reply.status == 201, reply
            store.set(SECRET_PREFIX + tenant, secret)
            tokens.append(admin.issue(tenant, sub=f"user-{i}"))
    finally:
        store.close()
    return tokens


def check_verdicts(ports: Mapping[str, int], tokens: list[str]) -> None:
    """Every contender accepts the first tokens and rejects a forged one (401): they verify
    the same thing before anything is measured. Raises AssertionError otherwise."""
    forged = tokens[0].rsplit(".", 1)[0] + "." + "A" * 43
    for name, port in ports.items():
        for token in tokens[:3]:
            reply: Reply = call(port, "GET", "/v1/verify", token=token)
            assert reply.status == 200, (name, reply)
        assert call(port, "GET", "/v1/verify", token=forged).status == 401, name


def measure(cfg: Settings, ports: Mapping[str, int], tokens: list[str]) -> list[dict[str, Any]]:
    """Warm each contender, then ``cfg.runs`` rounds of one wrk run each, the order rotating by
    round; return one summary per contender (median, min, max of req/s and percentiles, and
    the totals of non-2xx responses and socket errors)."""
    script = rotating_script(cfg.tmp / "tokens.lua", tokens)
    names = list(ports)

    def run(name: str, seconds: float) -> dict[str, float]:
        url = f"http://{HOST}:{ports[name]}/v1/verify"
        kw = {"threads": cfg.threads, "connections": cfg.connections, "script": script}
        return wrk(url, seconds, workers=WORKERS.get(name, ()), **kw)

    for name in names:
        run(name, cfg.warm_seconds)  # every worker's pools, caches and JIT warm
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_ in range(cfg.runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            runs[name].append(run(name, cfg.seconds))
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms")
    return [
        {
            "name": name,
            **{key: stats([r[key] for r in got]) for key in keys},
            "non_2xx": sum(r["non_2xx"] for r in got),
            "socket_errors": sum(r["socket_errors"] for r in got),
            "requests": sum(r["requests"] for r in got),
            "lopsided": sum(r.get("lopsided", 0) for r in got),
            "runs": got,
        }
        for name, got in runs.items()
    ]


def compare(
    cfg: Settings, pg_url: str, redis_url: str, baseline_redis_url: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Start the contenders, seed, check their verdicts agree, measure verify; then measure
    tenantauth's issuance (bench/issuance.py). Return the verify rows and the issuance rows."""
    with servers(cfg, pg_url, redis_url, baseline_redis_url) as ports:
        tokens = seed(ports[TENANTAUTH], baseline_redis_url, cfg.tenants)
        check_verdicts(ports, tokens)
        rows = measure(cfg, ports, tokens)
        return rows, issuance.measure(cfg, ports[TENANTAUTH], WORKERS[TENANTAUTH])
