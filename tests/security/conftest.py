"""Fixtures of the security suite.

The case tables hold hundreds of tokens; building an app per case would cost ~0.1 s each, so
``world`` is one app per backend per module (SQLite embedded; PostgreSQL + Redis), on the
run's own database and Redis DB, emptied first. Nothing in a table test changes state: the
clock stays at ``NOW`` and only tokens are sent. Tests that change tenants use the ordinary
function-scoped ``client`` fixture instead.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantauth.app import create_app
from tests.integration.helpers import ADMIN, TENANTS
from tests.oauth_accounts import add_client
from tests.security.forge import ACME_SECRET, OTHER_SECRET, b64url, forge
from tests.security.probe import World, reference_failures
from tests.support import (
    Backend,
    FixedClock,
    empty_database,
    empty_redis,
    make_settings,
    redis_db_url,
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """Tenants acme and other (known secrets), acme's OAuth client, reference failures."""
    state = tmp_path_factory.mktemp(f"security-{request.param}")
    backend = _backend(request, request.param, state)
    clock = FixedClock()
    app = create_app(make_settings(backend, state), clock=clock)
    services = app.extensions["tenantauth"]["services"]
    w = World(request.param, app, app.test_client(), services, clock)
    for tenant_id, secret in (("acme", ACME_SECRET), ("other", OTHER_SECRET)):
        body = {"id": tenant_id, "name": tenant_id, "secret": b64url(secret)}
        assert w.client.post(TENANTS, json=body, headers=ADMIN).status_code == 201
    add_client(services, "acme")
    w.refs = reference_failures(w, forge(key=b"\x01" * 32))
    yield w
    services.close()


def _backend(request: pytest.FixtureRequest, name: str, state: Path) -> Backend:
    if name == "sqlite":
        return Backend("sqlite", f"sqlite:///{state / 'tenantauth.db'}", None)
    database: str = request.getfixturevalue("pg_database")
    redis_url = redis_db_url(request.getfixturevalue("redis_db"))
    _empty(database, redis_url)
    return Backend("postgres", database, redis_url)


def _empty(database: str, redis_url: str) -> None:
    """Empty the run's database and our Redis DB of tenantauth data (as ``pg_url`` does)."""
    empty_database(database)
    empty_redis(redis_url)


class Listener:
    """A TCP server on 127.0.0.1 that counts connections (and answers none of them).

    Its URL goes into ``jku``/``x5u`` headers: any key fetch, SSRF probe or DNS-free
    callback would show up as a connection (RFC 8725 §3.10, VERIFIER-CHECKLIST #12).
    """

    def __init__(self) -> None:
        """Bind an ephemeral port and start accepting in a daemon thread."""
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """An http URL on the listener."""
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        """Stop accepting and free the port."""
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A counting listener, shown to count before the test uses it."""
    server = Listener()
    with socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass
    for _ in range(100):  # the accept thread counts asynchronously
        if server.connections:
            break
        threading.Event().wait(0.01)
    assert server.connections == 1, "the listener does not count connections"
    server.connections = 0
    yield server
    server.close()
