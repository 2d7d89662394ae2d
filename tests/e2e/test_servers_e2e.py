"""What `tenantauth serve` must do alike under gunicorn and granian (``--server``), where
the two servers differ on their own (docs/performance-servers.md)."""

from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path

import pytest

from tenantauth.granian_balance import MIN_GAP
from tenantauth.settings import MAX_REQUEST_LINE_BYTES
from tests.e2e.harness import (
    HOST,
    Launch,
    Server,
    call,
    children_of,
    production_environ,
    stop_process,
    wait_every_worker_answered,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
PROBLEM_JSON = "application/problem+json"
LINE_OVERHEAD = len("GET  HTTP/1.1")
#: New connections sent while a worker is stopped: with a socket per worker, ~1 in 3 hung.
STOPPED_WORKER_REQUESTS = 40
#: TENANTAUTH_WORKER_TIMEOUT of the watchdog tests: the shortest allowed (a 0.5 s heartbeat).
SHORT_TIMEOUT = 2
#: Keep-alive connections of the balancing test, all opened while one of two workers is stopped.
PILED_CONNECTIONS = 16
#: How long those may take to spread once the worker runs again (a census is every 0.25 s).
SPREAD_SECONDS = 10.0
#: granian's crash-loop rule: a worker dying this soon after its respawn stops the server.
GRANIAN_CRASH_LOOP_SECONDS = 5.5


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


def held_connections(server: Server) -> dict[int, int]:
    """Return each worker's count of established connections on the server's port: the
    inodes /proc/net/tcp lists as ESTABLISHED (state 01) on that local port, among the
    worker's own sockets (/proc/PID/fd)."""
    suffix = f":{server.port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    rows += Path("/proc/net/tcp6").read_text().splitlines()[1:]
    established = {
        fields[9]
        for fields in map(str.split, rows)
        if fields[3] == "01" and fields[1].endswith(suffix)
    }
    return {pid: len(socket_inodes(pid) & established) for pid in server.pids}


def socket_inodes(pid: int) -> set[str]:
    """Return the inodes of process ``pid``'s sockets (as text)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = fd.readlink().name
        except OSError:  # closed since the listing
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    return inodes


def get_healthz(connection: http.client.HTTPConnection) -> int:
    """Send GET /healthz on ``connection`` (reopened if the server closed it); return the
    status."""
    connection.request("GET", "/healthz")
    reply = connection.getresponse()
    reply.read()
    return reply.status


@pytest.mark.parametrize("http_server", ["granian"])
def test_keep_alive_connections_piled_on_one_worker_are_spread(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, http_server: str
) -> None:
    """Connections opened while one of two workers is stopped all land on the other (what a
    burst does when granian's greedy accept loops share one queue) and keep-alive holds them
    there. Once the stopped worker runs again, the loaded one asks its excess to close
    (``Connection: close``, granian_balance) and the clients reconnect through the shared
    queue: the idle worker gets its share, and no request fails. Without the balancer the
    stopped worker never gets one of them."""
    env = production_environ(pg_url, redis_url, tmp_path / "balance.access.log")
    server = launch("balance", env, workers=2)
    wait_every_worker_answered(server, "boot")
    stopped, running = sorted(server.pids)
    stop_process(stopped)
    try:
        clients = [
            http.client.HTTPConnection(HOST, server.port, timeout=10)
            for _ in range(PILED_CONNECTIONS)
        ]
        statuses = [get_healthz(client) for client in clients]
        assert held_connections(server) == {stopped: 0, running: PILED_CONNECTIONS}
    finally:
        os.kill(stopped, signal.SIGCONT)
    deadline = time.monotonic() + SPREAD_SECONDS
    # Settled: each worker within the rule's tolerance of half (a closed connection is open
    # again only at its next request, so count both after a full round of requests).
    share = PILED_CONNECTIONS // 2 - MIN_GAP
    while min((held := held_connections(server)).values()) < share:
        assert time.monotonic() < deadline, f"not spread in {SPREAD_SECONDS} s: {held}"
        statuses += [get_healthz(client) for client in clients]
    for client in clients:
        client.close()
    assert set(statuses) == {200}


def wait_replaced(server: Server, gone: int, timeout: float) -> tuple[int, float]:
    """Wait until ``gone`` is no longer a worker of ``server`` and it has its full count
    again; update ``server.pids``; return the new worker's pid and when it was first seen
    (monotonic). Fails if the server exits or ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc.poll() is None, server.output()
        pids = children_of(server.proc.pid)
        if gone not in pids and len(pids) == server.workers:
            (new,) = pids - server.pids
            server.pids = frozenset(pids)
            return new, time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"worker {gone} was not replaced within {timeout} s\n{server.output()}")


@pytest.mark.parametrize("http_server", ["gunicorn", "granian"])
def test_a_hung_worker_is_killed_and_replaced(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, http_server: str
) -> None:
    """A worker that stops (SIGSTOP: no heartbeat) is killed once TENANTAUTH_WORKER_TIMEOUT
    passes and replaced; the other worker, beating, is left alone. gunicorn's arbiter does it
    under gunicorn, tenantauth.granian_watchdog under granian (granian alone never would)."""
    env = production_environ(pg_url, redis_url, tmp_path / "hung.access.log")
    server = launch("hung", {**env, "TENANTAUTH_WORKER_TIMEOUT": str(SHORT_TIMEOUT)}, workers=2)
    wait_every_worker_answered(server, "boot")  # both time a worker only once it has booted
    hung, healthy = sorted(server.pids)
    stop_process(hung)
    stopped_at = time.monotonic()
    new, replaced_at = wait_replaced(server, hung, timeout=SHORT_TIMEOUT + 20)
    assert replaced_at - stopped_at >= SHORT_TIMEOUT - 0.5  # not before its timeout
    assert server.pids == {healthy, new}
    wait_every_worker_answered(server, "after-hang")


@pytest.mark.parametrize("http_server", ["gunicorn", "granian"])
def test_a_booted_worker_that_dies_soon_after_its_respawn_is_replaced(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, http_server: str
) -> None:
    """A worker that has booted (served a request) and dies within 5.5 s of being respawned
    is replaced again, the server goes on: granian alone would call it a crash loop and stop
    the whole server (what gunicorn does only for a worker that fails to boot)."""
    env = production_environ(pg_url, redis_url, tmp_path / "crash.access.log")
    server = launch("crash", {**env, "TENANTAUTH_WORKER_TIMEOUT": str(SHORT_TIMEOUT)}, workers=2)
    first = min(server.pids)
    os.kill(first, signal.SIGKILL)
    second, respawned_at = wait_replaced(server, first, timeout=20)
    wait_every_worker_answered(server, "booted")
    time.sleep(2 * SHORT_TIMEOUT / 4)  # two watchdog checks: it has seen the beat
    assert time.monotonic() - respawned_at < GRANIAN_CRASH_LOOP_SECONDS, "too slow to test"
    os.kill(second, signal.SIGKILL)
    wait_replaced(server, second, timeout=20)
    wait_every_worker_answered(server, "after-crash")
    assert server.proc.poll() is None


#: How soon a server stopped while its workers boot must be gone (they hold no request).
BOOTING_STOP_SECONDS = 5.0


@pytest.mark.parametrize("http_server", ["gunicorn", "granian"])
def test_a_server_stopped_while_its_workers_boot_exits_at_once(
    launch: Launch, tmp_path: Path, pg_url: str, redis_url: str, http_server: str
) -> None:
    """SIGTERM as soon as the workers are forked, while they load the app: the server is gone
    within seconds. granian's workers inherited the main process's signal handler and lost a
    SIGTERM that came during boot; they were killed only after the 20 s drain timeout."""
    env = production_environ(pg_url, redis_url, tmp_path / "boot.access.log")
    server = launch("booting", env, workers=2, ready=False)
    deadline = time.monotonic() + 20
    while len(children_of(server.proc.pid)) < server.workers:
        assert time.monotonic() < deadline and server.proc.poll() is None, server.output()
        time.sleep(0.005)
    stopped_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)
    assert time.monotonic() - stopped_at < BOOTING_STOP_SECONDS, server.output()
