"""Fixtures for the gateway suite: a real tenantauth (production mode), a recording upstream
and a real nginx or Caddy between the client and both."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import launch, pytest_runtest_makereport  # noqa: F401  (fixtures, hook)
from tests.e2e.harness import Admin, Launch, Server, production_environ
from tests.faults.conftest import proxied_url
from tests.faults.harness import PrivateRedis, TcpProxy
from tests.gateways.gateways import HOST, Gateway, start_caddy, start_nginx
from tests.gateways.upstream import Upstream

GATEWAYS = {"nginx": start_nginx, "caddy": start_caddy}


@dataclass(frozen=True)
class Reply:
    """A complete HTTP response from the gateway."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass
class Stack:
    """client → gateway → (tenantauth, upstream)."""

    gateway: Gateway
    tenantauth: Server
    upstream: Upstream
    admin: Admin

    def get(self, path: str, headers: list[tuple[str, str]] | None = None) -> Reply:
        """GET ``path`` through the gateway with exactly these header fields, in order."""
        conn = http.client.HTTPConnection(HOST, self.gateway.port, timeout=30)
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            for name, value in headers or []:
                conn.putheader(name, value)
            conn.endheaders()
            with conn.getresponse() as response:
                return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def bearer(self, path: str, token: str, *extra: tuple[str, str]) -> Reply:
        """GET ``path`` with ``Authorization: Bearer <token>`` and ``extra`` fields."""
        return self.get(path, [("Authorization", f"Bearer {token}"), *extra])


def _stack(
    request: pytest.FixtureRequest, tmp_path: Path, tenantauth: Server, upstream: Upstream
) -> Iterator[Stack]:
    gateway = GATEWAYS[request.param](tmp_path, tenantauth.port, upstream.port)
    try:
        yield Stack(gateway, tenantauth, upstream, Admin(tenantauth.port))
    finally:
        gateway.stop()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The recording upstream the gateway protects."""
    with Upstream() as server:
        yield server


@pytest.fixture
def tenantauth(launch: Launch, tmp_path: Path, pg_url: str, redis_url: str) -> Server:  # noqa: F811
    """A production-mode tenantauth with 2 workers."""
    env = production_environ(pg_url, redis_url, tmp_path / "tenantauth.access.log")
    return launch("tenantauth", env, workers=2)


@pytest.fixture(params=sorted(GATEWAYS))
def stack(
    request: pytest.FixtureRequest, tmp_path: Path, tenantauth: Server, upstream: Upstream
) -> Iterator[Stack]:
    """The production-mode tenantauth behind the parametrised gateway."""
    yield from _stack(request, tmp_path, tenantauth, upstream)


@dataclass
class Outage:
    """The dependencies of a tenantauth that a test can take away."""

    redis: PrivateRedis
    pg_proxy: TcpProxy

    def both_down(self) -> None:
        """Stop Redis and cut PostgreSQL: tenantauth can only answer 503."""
        self.redis.stop(kill=True)
        self.pg_proxy.cut()


@pytest.fixture(params=sorted(GATEWAYS))
def fragile_stack(
    request: pytest.FixtureRequest,
    launch: Launch,  # noqa: F811
    tmp_path: Path,
    pg_url: str,
    upstream: Upstream,
) -> Iterator[tuple[Stack, Outage]]:
    """A stack whose tenantauth uses a private Redis and reaches PostgreSQL through a proxy."""
    redis = PrivateRedis(tmp_path / "redis")
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or HOST, parts.port or 5432).start()
    try:
        redis.start()
        env = production_environ(
            proxied_url(pg_url, proxy.port), redis.url, tmp_path / "ta.access.log"
        )
        env |= {"TENANTAUTH_DB_TIMEOUT": "1", "TENANTAUTH_DB_POOL_MIN_SIZE": "0"}
        tenantauth = launch("tenantauth", env, workers=2)
        for stack in _stack(request, tmp_path, tenantauth, upstream):
            yield stack, Outage(redis, proxy)
    finally:
        proxy.close()
        redis.close()
