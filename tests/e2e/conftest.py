"""Fixtures that run the real service: `tenantauth serve` (granian, its default server,
several workers) on loopback against the run's PostgreSQL database and Redis DB. A module
overriding the ``http_server`` fixture (tests/conftest.py; or ``TEST_HTTP_SERVER=gunicorn``)
runs its servers under gunicorn.

Servers are stopped in teardown whatever happened (SIGTERM, then SIGKILL after a timeout);
when a test fails, everything the servers printed is attached to the failure report.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from pathlib import Path

import pytest

from tests.e2e.harness import Launch, Server, production_environ, start_server, wait_ready

WORKERS = 3
_SERVERS = pytest.StashKey[list[Server]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the output of the test's servers to a failed test's report."""
    report = yield
    if report.failed:
        for server in item.stash.get(_SERVERS, []):
            report.sections.append((f"{server.name} output", server.output()))
    return report


@pytest.fixture
def launch(request: pytest.FixtureRequest, tmp_path: Path, http_server: str) -> Iterator[Launch]:
    """Return ``launch(name, env, workers=3, port=None, ready=True)``: start a server (under
    ``http_server`` unless ``env`` names ``TENANTAUTH_SERVER``) and, unless ``ready=False``,
    wait until it is ready. Every server started is stopped at teardown."""
    started: list[Server] = []
    request.node.stash[_SERVERS] = started

    def start(
        name: str,
        env: Mapping[str, str],
        workers: int = WORKERS,
        port: int | None = None,
        *,
        ready: bool = True,
    ) -> Server:
        env = {"TENANTAUTH_SERVER": http_server, **env}
        server = start_server(tmp_path, name, env, workers=workers, port=port)
        started.append(server)
        if ready:
            wait_ready(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def _production(
    tmp_path: Path, pg_url: str, redis_url: str, name: str, memory: bool | None = None
) -> dict[str, str]:
    env = production_environ(pg_url, redis_url, tmp_path / f"{name}.access.log")
    if memory is not None:
        env["TENANTAUTH_VERIFY_MEMORY"] = "true" if memory else "false"
    return env


@pytest.fixture
def verify_memory() -> bool | None:
    """Whether the servers verify from memory (None: the harness default). The race modules
    override it with a parametrised fixture, so their tests run both ways."""
    return None


@pytest.fixture
def server(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, verify_memory: bool | None
) -> Server:
    """One production-mode server with 3 gunicorn workers."""
    return launch("server", _production(tmp_path, pg_url, redis_url, "server", verify_memory))


@pytest.fixture
def replicas(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, verify_memory: bool | None
) -> list[Server]:
    """Two production-mode servers ("replicas", 3 workers each) on different ports, sharing
    one PostgreSQL database and one Redis DB."""
    servers = [
        launch(name, _production(tmp_path, pg_url, redis_url, name, verify_memory), ready=False)
        for name in ("replica0", "replica1")
    ]
    for server in servers:  # started together: both migrate at once, as replicas would
        wait_ready(server)
    return servers
