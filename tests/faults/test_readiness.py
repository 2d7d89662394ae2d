"""Readiness under injected outages (issue 13, docs/reliability.md R1–R6): a pod stays in
rotation while it can answer correctly, leaves it only when it cannot, and comes back by
itself; and ``serve`` refuses a Redis that may evict revocation marks.

Every fault is injected into the suite's own Redis and proxy (tests/faults/harness.py); the
shared servers are never stopped or reconfigured.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tenantauth.cache.redis import RedisCache
from tenantauth.cli.serve import check_eviction_policy
from tests.e2e.harness import Admin, Launch, Server, call, production_environ
from tests.faults.harness import PrivateRedis, TcpProxy, wait_for

#: A change of readiness must show within this (pool reconnect backoff included).
RECOVER_SECONDS = 15.0
#: Probes per check: new connections each, so that every worker is likely asked.
PROBES = 6


def _readyz(server: Server) -> list[tuple[int, dict[str, Any]]]:
    """Ask /readyz ``PROBES`` times at once; return each (status, body)."""
    with ThreadPoolExecutor(PROBES) as pool:
        replies = list(pool.map(lambda _: call(server.port, "GET", "/readyz"), range(PROBES)))
    return [(r.status, r.json()) for r in replies]


def _is(server: Server, status: int, readiness: str) -> Callable[[], bool]:
    """A predicate: one /readyz answers ``status`` with readiness ``readiness``."""

    def check() -> bool:
        reply = call(server.port, "GET", "/readyz")
        body = reply.json()
        return reply.status == status and body.get("status", body.get("readiness")) == readiness

    return check


def _warm_token(server: Server, tenant_id: str) -> str:
    """Create a tenant, mint a token and verify it once (which fills the shared cache)."""
    admin = Admin(server.port)
    admin.create_tenant(tenant_id)
    token = admin.issue(tenant_id)
    assert call(server.port, "GET", "/v1/verify", token=token).status == 200
    return token


def test_r1_redis_stopped_pods_stay_ready(
    fault_server: Server, private_redis: PrivateRedis
) -> None:
    """R1: Redis stopped → every /readyz is 200 "degraded" (cache down, database up) and
    verification still answers; "ready" again once Redis is back."""
    token = _warm_token(fault_server, "r1")
    private_redis.stop()
    answers = _readyz(fault_server)
    verified = call(fault_server.port, "GET", "/v1/verify", token=token).status
    private_redis.start()
    back = wait_for(_is(fault_server, 200, "ready"), RECOVER_SECONDS)
    assert {status for status, _ in answers} == {200}, answers
    assert {body["status"] for _, body in answers} == {"degraded"}
    assert all(not body["dependencies"]["cache"]["ok"] for _, body in answers)
    assert all(body["dependencies"]["database"]["ok"] for _, body in answers)
    assert verified == 200
    assert back is not None, "readiness did not return after Redis came back"


def test_r2_postgres_cut_redis_warm_pods_stay_ready(
    fault_server: Server, pg_proxy: TcpProxy
) -> None:
    """R2: PostgreSQL cut with Redis up → /readyz 200 "degraded" and a warm tenant still
    verifies; "ready" again once PostgreSQL is back."""
    token = _warm_token(fault_server, "r2")
    pg_proxy.cut()
    answers = _readyz(fault_server)
    verified = call(fault_server.port, "GET", "/v1/verify", token=token).status
    pg_proxy.restore()
    back = wait_for(_is(fault_server, 200, "ready"), RECOVER_SECONDS)
    assert {status for status, _ in answers} == {200}, answers
    assert {body["status"] for _, body in answers} == {"degraded"}
    assert all(not body["dependencies"]["database"]["ok"] for _, body in answers)
    assert verified == 200
    assert back is not None, "readiness did not return after PostgreSQL came back"


def test_r3_both_down_pods_leave_and_return(
    fault_server: Server, private_redis: PrivateRedis, pg_proxy: TcpProxy
) -> None:
    """R3: Redis stopped and PostgreSQL cut → every /readyz is a 503 "unavailable" problem,
    /healthz stays 200; both back → "ready" again without a restart."""
    private_redis.stop()
    pg_proxy.cut()
    answers = _readyz(fault_server)
    alive = call(fault_server.port, "GET", "/healthz").status
    private_redis.start()
    pg_proxy.restore()
    back = wait_for(_is(fault_server, 200, "ready"), RECOVER_SECONDS)
    assert {status for status, _ in answers} == {503}, answers
    assert {body["readiness"] for _, body in answers} == {"unavailable"}
    assert {body["code"] for _, body in answers} == {"not_ready"}
    assert alive == 200
    assert back is not None, "readiness did not return after both came back"


def test_r4_an_evicting_policy_is_not_ready(
    fault_server: Server, private_redis: PrivateRedis
) -> None:
    """R4: `serve` started on noeviction; Redis switched to allkeys-lru at run time → 503
    naming the policy; switched back → ready."""
    before = call(fault_server.port, "GET", "/readyz").json()
    with private_redis.client() as client:
        client.config_set("maxmemory-policy", "allkeys-lru")
        try:
            answers = _readyz(fault_server)
        finally:
            client.config_set("maxmemory-policy", "noeviction")
    back = wait_for(_is(fault_server, 200, "ready"), RECOVER_SECONDS)
    assert before["dependencies"]["cache"]["eviction_policy"] == "noeviction"
    assert {status for status, _ in answers} == {503}, answers
    assert all("'allkeys-lru'" in body["detail"] for _, body in answers)
    assert back is not None


@pytest.fixture
def lru_redis(tmp_path: Path) -> Any:
    """A private redis-server whose maxmemory-policy is allkeys-lru."""
    server = PrivateRedis(tmp_path / "lru", config=("--maxmemory-policy", "allkeys-lru"))
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_r5_serve_refuses_an_evicting_redis(
    lru_redis: PrivateRedis, launch: Launch, pg_url: str, tmp_path: Path
) -> None:
    """R5: `tenantauth serve` against an allkeys-lru Redis exits 1 with a message naming the
    policy and the fix, before starting gunicorn."""
    env = production_environ(pg_url, lru_redis.url, tmp_path / "lru.access.log")
    server = launch("lru", env, workers=1, ready=False)
    code = server.proc.wait(timeout=60)
    err = server.stderr.read_text(errors="replace")
    assert code == 1, server.output()
    assert "maxmemory-policy is 'allkeys-lru'" in err and "noeviction" in err


@pytest.mark.parametrize(
    ("renamed", "expected"),
    [(("CONFIG",), "noeviction"), (("CONFIG", "INFO"), "")],
    ids=["config-renamed", "config-and-info-renamed"],
)
def test_r6_policy_read_without_config(
    tmp_path: Path, renamed: tuple[str, ...], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """R6: a Redis with CONFIG disabled (as on managed services) still reports its policy
    through INFO memory; with INFO disabled too the policy is "" (unknown), not an error,
    and the start-up check warns instead of refusing."""
    config = tuple(arg for name in renamed for arg in ("--rename-command", name, ""))
    server = PrivateRedis(tmp_path / "managed", config=config)
    try:
        server.start()
        cache = RedisCache(server.url, timeout=1.0)
        try:
            assert cache.eviction_policy() == expected
            cache.ping()  # a refused command did not open the breaker
            check_eviction_policy(cache)  # returns: no SystemExit
        finally:
            cache.close()
    finally:
        server.close()
    warned = "cannot be checked" in capsys.readouterr().err
    assert warned is (expected == "")
