"""Fixtures shared by every suite.

Real PostgreSQL: one fresh database per test run, built by the migrations and dropped at the
end. Real Redis: our own DB number (``TENANTAUTH_TEST_REDIS_DB``, default 13), flushed before
each test that uses it — never FLUSHALL, never another DB. Unreachable servers fail the run
with the exact fix; nothing is skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from psycopg import sql

from tenantauth.app import create_app
from tenantauth.bootstrap import build_services
from tenantauth.domain.services import Services
from tests.support import (
    DATABASE_URL,
    HTTP_SERVER,
    REDIS_DB,
    RUN_LOCK,
    Backend,
    FixedClock,
    empty_database,
    empty_redis,
    make_settings,
    redis_db_url,
)

LOCK_SECONDS = 3600
HOW_TO_FIX = "run `make services` (scripts/ensure-test-services.sh) or set {var}"


@pytest.fixture(autouse=True)
def _scrub_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no TENANTAUTH_* variables (as Flask's own conftest does)."""
    for name in list(os.environ):
        if name.startswith("TENANTAUTH_"):
            monkeypatch.delenv(name)


@pytest.fixture
def http_server() -> str:
    """The server `tenantauth serve` runs in the e2e harness's ``launch`` (``--server``):
    ``TEST_HTTP_SERVER``, else granian (the default). Modules override it (a parametrised
    fixture, or ``pytest.mark.parametrize("http_server", ...)``) to run on gunicorn too."""
    return HTTP_SERVER


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str]:
    """Create a throwaway PostgreSQL database for this run (per xdist worker); drop it after."""
    name = f"tenantauth_test_{worker_id}_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL test server unreachable at {DATABASE_URL}: {exc}\n"
            + HOW_TO_FIX.format(var="TENANTAUTH_TEST_DATABASE_URL"),
            pytrace=False,
        )
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{name}"))
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def worker_id() -> str:
    """The xdist worker id, or 'main' without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """The run's PostgreSQL database, emptied before the test."""
    empty_database(pg_database)
    return pg_database


@pytest.fixture(scope="session")
def redis_db(worker_id: str) -> Iterator[int]:
    """Claim a Redis DB number of our own for this run (per xdist worker) and release it.

    Claiming is one atomic ``SET NX`` of a lock key inside the candidate DB, so concurrent
    test runs on one machine never share (or flush) each other's DB. DB 0 is never used.
    """
    run_id = f"{os.getpid()}-{secrets.token_hex(4)}"
    for db in range(REDIS_DB, 0, -1):
        client = redis.Redis.from_url(redis_db_url(db), socket_timeout=5)
        try:
            claimed = client.set(RUN_LOCK, run_id, nx=True, ex=LOCK_SECONDS)
        except redis.exceptions.ConnectionError as exc:
            client.close()
            pytest.fail(
                f"Redis test server unreachable at {redis_db_url(db)}: {exc}\n"
                + HOW_TO_FIX.format(var="TENANTAUTH_TEST_REDIS_URL"),
                pytrace=False,
            )
        if claimed:
            try:
                yield db
            finally:
                if client.get(RUN_LOCK) == run_id.encode():
                    client.flushdb()
                client.close()
            return
        client.close()
    pytest.fail(f"no free Redis DB among 1..{REDIS_DB}: other test runs hold them all")


@pytest.fixture
def redis_url(redis_db: int) -> str:
    """Our own Redis DB, emptied of tenantauth keys before the test (the run lock stays)."""
    url = redis_db_url(redis_db)
    empty_redis(url)
    return url


@pytest.fixture
def clock() -> FixedClock:
    """A fixed clock at tests.support.NOW."""
    return FixedClock()


@pytest.fixture
def sqlite_backend(tmp_path: Path) -> Backend:
    """Embedded-style backend: a SQLite file, no Redis."""
    return Backend("sqlite", f"sqlite:///{tmp_path / 'tenantauth.db'}", None)


@pytest.fixture
def postgres_backend(pg_url: str, redis_url: str) -> Backend:
    """Production backend: real PostgreSQL and real Redis."""
    return Backend("postgres", pg_url, redis_url)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each test using this runs once per backend (same API in both modes)."""
    return request.getfixturevalue(f"{request.param}_backend")  # type: ignore[no-any-return]


@pytest.fixture
def app(backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Flask]:
    """An app on ``backend`` with a fixed clock."""
    application = create_app(make_settings(backend, tmp_path), clock=clock)
    yield application
    application.extensions["tenantauth"]["services"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """The Flask test client of ``app``."""
    return app.test_client()


@pytest.fixture
def services(app: Flask) -> Services:
    """The Services bundle of ``app``."""
    return app.extensions["tenantauth"]["services"]  # type: ignore[no-any-return]


@pytest.fixture
def pg_services(postgres_backend: Backend, tmp_path: Path, clock: FixedClock) -> Iterator[Services]:
    """Services on real PostgreSQL + Redis (migrated), without an app."""
    svc = build_services(make_settings(postgres_backend, tmp_path), clock=clock)
    svc.storage.migrate()  # type: ignore[attr-defined]
    yield svc
    svc.close()
