"""Fixtures of the fault suite: a private Redis, a proxy in front of PostgreSQL, a gunicorn
server wired to both, and the session's metrics table (printed at the end of the run).

Not part of the default run (pyproject's addopts ignores this directory); run it with
``make test-faults``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.conftest import launch, pytest_runtest_makereport  # noqa: F401 - fixture, hook
from tests.e2e.harness import (
    Launch,
    Server,
    production_environ,
    wait_every_worker_answered,
)
from tests.faults.harness import PrivateRedis, ScenarioMetrics, TcpProxy, markdown_table

#: Short timeouts, so faults cost bounded latency and the suite stays fast.
REDIS_TIMEOUT = "0.2"
DB_TIMEOUT = "2"
BOOT_SECONDS = 20.0
_TABLE = pytest.StashKey[list[ScenarioMetrics]]()


def pytest_configure(config: pytest.Config) -> None:
    """Start the session's (empty) metrics table."""
    config.stash[_TABLE] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print every scenario's metrics as one table."""
    rows = terminalreporter.config.stash.get(_TABLE, [])
    if not rows:
        return
    terminalreporter.section("fault scenarios")
    for line in markdown_table(rows):
        terminalreporter.write_line(line)


@pytest.fixture
def fault_metrics(request: pytest.FixtureRequest) -> Callable[[ScenarioMetrics], None]:
    """Return ``record(metrics)``: add a scenario's row to the end-of-session table."""
    return request.config.stash[_TABLE].append


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started redis-server of our own (own port, own directory, no persistence)."""
    server = PrivateRedis(tmp_path / "redis")
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_proxy(pg_url: str) -> Iterator[TcpProxy]:
    """A TCP proxy on a free loopback port in front of the run's PostgreSQL server."""
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    try:
        yield proxy
    finally:
        proxy.close()


def proxied_url(pg_url: str, port: int) -> str:
    """``pg_url`` (same database, user and password) through the proxy on ``port``."""
    parts = urlsplit(pg_url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


#: The ``start_fault_server`` fixture: ``start(name="server", **env) -> Server``.
StartServer = Callable[..., Server]

#: Extra environment of a server whose storage loads are counted (``LoadLog``): DEBUG for
#: tenantauth's own loggers, but gunicorn's error log stays at INFO (not a line per request).
COUNT_LOADS = {"TENANTAUTH_LOG_LEVEL": "DEBUG"}


@pytest.fixture
def start_fault_server(
    private_redis: PrivateRedis,
    pg_proxy: TcpProxy,
    launch: Launch,  # noqa: F811 - the e2e fixture imported above
    tmp_path: Path,
    pg_url: str,
) -> StartServer:
    """Return ``start(name="server", **env)``: a production-mode server (3 workers)
    on PostgreSQL through ``pg_proxy`` and on ``private_redis``, with short dependency
    timeouts and ``env`` added to its environment; it returns once every worker answered.
    (Redis and the proxy are requested first so they outlive the servers at teardown.)"""

    def start(name: str = "server", **extra: str) -> Server:
        env = production_environ(
            proxied_url(pg_url, pg_proxy.port), private_redis.url, tmp_path / f"{name}.access.log"
        )
        env["TENANTAUTH_REDIS_TIMEOUT"] = REDIS_TIMEOUT
        env["TENANTAUTH_DB_TIMEOUT"] = DB_TIMEOUT
        env["GUNICORN_CMD_ARGS"] += " --log-level info"
        env.update(extra)
        server = launch(name, env)
        # /readyz answered and every worker is forked, but one may still be importing the
        # app: no fault may hit a worker that is still booting.
        wait_every_worker_answered(server, timeout=BOOT_SECONDS)
        return server

    return start


@pytest.fixture
def fault_server(start_fault_server: StartServer) -> Server:
    """A production-mode server (3 workers) on PostgreSQL through ``pg_proxy`` and
    on ``private_redis``, with short dependency timeouts."""
    return start_fault_server()
