"""What `tenantauth serve` must do alike under gunicorn and granian (``--server``), where
the two servers differ on their own (docs/performance-servers.md)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tenantauth.settings import MAX_REQUEST_LINE_BYTES
from tests.e2e.harness import Launch, call, production_environ, stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
PROBLEM_JSON = "application/problem+json"
LINE_OVERHEAD = len("GET  HTTP/1.1")
#: New connections sent while a worker is stopped: with a socket per worker, ~1 in 3 hung.
STOPPED_WORKER_REQUESTS = 40


def target_of_line(length: int, path: str) -> str:
    """Return ``path`` with a query making the request line exactly ``length`` bytes."""
    return path + "?pad=" + "a" * (length - LINE_OVERHEAD - len(path) - len("?pad="))


@pytest.mark.parametrize("http_server", ["gunicorn", "granian"])
def test_an_overlong_request_line_is_414(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, http_server: str
) -> None:
    """A request line over 8190 bytes is refused with 414 on every path, the gateway endpoint
    included; a line of exactly 8190 bytes is served. Under granian the 414 is the app's
    problem (granian has no limit); gunicorn answers first with its own."""
    env = production_environ(pg_url, redis_url, tmp_path / "limits.access.log")
    server = launch("limits", env, workers=1)
    for path in ("/healthz", "/v1/verify", "/v1/admin/tenants"):
        for length in (MAX_REQUEST_LINE_BYTES + 1, 20_000):
            reply = call(server.port, "GET", target_of_line(length, path))
            assert reply.status == 414, (path, length, reply)
            if http_server == "granian":
                headers = {name.lower(): value for name, value in reply.headers.items()}
                assert headers["content-type"] == PROBLEM_JSON  # granian sends lower case
                assert reply.json()["code"] == "request_uri_too_long"
    assert (
        call(server.port, "GET", target_of_line(MAX_REQUEST_LINE_BYTES, "/healthz")).status == 200
    )


@pytest.mark.parametrize("http_server", ["gunicorn", "granian"])
def test_a_stopped_worker_leaves_new_connections_to_the_others(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, http_server: str
) -> None:
    """With one of two workers stopped (SIGSTOP: a hung worker), every new connection is still
    answered: the workers share one listening socket, so the stopped one takes none. With a
    socket per worker (granian's own way on Linux, SO_REUSEPORT) the kernel hands the stopped
    worker its share, and those connections time out (about a third did here)."""
    env = production_environ(pg_url, redis_url, tmp_path / "stopped.access.log")
    server = launch("stopped", env, workers=2)
    stopped = min(server.pids)
    stop_process(stopped)
    try:
        statuses = []
        for _ in range(STOPPED_WORKER_REQUESTS):
            try:
                statuses.append(call(server.port, "GET", "/healthz", timeout=2.0).status)
            except OSError:  # a timeout: the connection went to the stopped worker
                statuses.append(0)
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert statuses == [200] * STOPPED_WORKER_REQUESTS, sorted(set(statuses))
