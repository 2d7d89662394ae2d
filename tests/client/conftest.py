"""Fixtures of the client suite (``tenantauth_client``, clients/python): a real production-mode
tenantauth (gunicorn, PostgreSQL, Redis) started by the e2e harness, clients pointed at it,
and a fresh tenant per test.

Most tests share one server per module (``live``): a server start and stop costs ~4 s, and
every test works in a tenant of its own. A test that stops a server starts its own with
``launch``, the e2e suite's fixture (imported here with its failure-report hook).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenantauth_client import TenantAuthClient
from tests.e2e.conftest import _SERVERS, launch, pytest_runtest_makereport
from tests.e2e.harness import HOST, Server, production_environ, start_server, wait_ready
from tests.support import ADMIN_TOKEN, empty_database, empty_redis, redis_db_url

__all__ = ["launch", "pytest_runtest_makereport"]


@dataclass(frozen=True)
class Tenant:
    """A tenant created for one test, with the secret it was imported with (to forge tokens)."""

    id: str
    secret: bytes


def base_url(srv: Server) -> str:
    """Return the base URL of a running server."""
    return f"http://{HOST}:{srv.port}"


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, pg_database: str, redis_db: int
) -> Iterator[Server]:
    """One production-mode server (2 workers) for the whole module, on this run's own
    (emptied) PostgreSQL database and Redis DB."""
    redis_url = redis_db_url(redis_db)
    empty_database(pg_database)
    empty_redis(redis_url)
    tmp = tmp_path_factory.mktemp("live")
    srv = start_server(
        tmp, "live", production_environ(pg_database, redis_url, tmp / "live.access.log"), workers=2
    )
    wait_ready(srv)
    yield srv
    srv.stop()


@pytest.fixture
def admin(live: Server, request: pytest.FixtureRequest) -> Iterator[TenantAuthClient]:
    """A client of ``live`` holding the admin token (default settings: no cache)."""
    request.node.stash[_SERVERS] = [live]  # a failing test's report shows the server output
    with TenantAuthClient(base_url(live), ADMIN_TOKEN) as client:
        yield client


@pytest.fixture
def verifier(live: Server) -> Iterator[TenantAuthClient]:
    """A client of ``live`` without admin token, as a resource server would hold."""
    with TenantAuthClient(base_url(live)) as client:
        yield client


@pytest.fixture
def tenant(admin: TenantAuthClient) -> Tenant:
    """A new tenant on ``live`` with a known imported secret."""
    secret = secrets.token_bytes(32)
    tenant_id = f"t-{secrets.token_hex(5)}"
    admin.create_tenant(tenant_id, "Client test", secret=b64url(secret))
    return Tenant(tenant_id, secret)


def b64url(raw: bytes) -> str:
    """Encode unpadded base64url."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def client_dir() -> Path:
    """Return the directory of the client distribution (clients/python)."""
    return Path(__file__).resolve().parents[2] / "clients" / "python"
