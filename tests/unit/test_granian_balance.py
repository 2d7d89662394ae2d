"""granian_balance: the census on real sockets, the rule, the shared counts, the middleware."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tenantauth.granian_balance import (
    MIN_GAP,
    STALE_SECONDS,
    SUFFIX,
    ConnectionBalancer,
    connections_to_close,
    count_connections,
    read_counts,
    write_count,
)


@pytest.mark.parametrize(
    ("mine", "others", "due"),
    [
        (32, [], 0),  # alone: nobody to hand connections to
        (32, [0], 16),  # everything on one worker: half goes
        (16, [16], 0),
        (17, [16], 0),  # as even as an odd total can be: left alone, never flaps
        (17, [15], 1),
        (18, [14], 2),
        (0, [32], 0),  # below the share: the other worker closes, not this one
        (30, [0, 0], 20),  # three workers: a share of 10
        (11, [10, 10], 0),
        (12, [10, 10], 1),
        (11, [11, 10], 0),
        (3, [0], 1),  # 2 is the share
        (1, [0], 0),
    ],
)
def test_a_worker_closes_its_excess_over_the_fair_share(
    mine: int, others: list[int], due: int
) -> None:
    assert connections_to_close(mine, others) == due


def test_closing_never_goes_below_the_share_and_stops_once_even() -> None:
    """Two workers: a worker closes only what is above its share, and only while it holds
    MIN_GAP or more above the other; moving every closed connection over settles in one step."""
    for mine in range(60):
        for other in range(60):
            due = connections_to_close(mine, [other])
            assert (due > 0) == (mine - other >= MIN_GAP)
            assert due == 0 or mine - due >= -(-(mine + other) // 2)  # never below the share
            if due:
                assert connections_to_close(mine - due, [other + due]) == 0
                assert connections_to_close(other + due, [mine - due]) == 0


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def connect(listener: socket.socket, n: int) -> tuple[list[socket.socket], list[socket.socket]]:
    """Open ``n`` connections to ``listener`` and accept them; return (clients, accepted)."""
    clients = [socket.create_connection(listener.getsockname()) for _ in range(n)]
    accepted = [listener.accept()[0] for _ in range(n)]
    return clients, accepted


def close_all(*groups: list[socket.socket]) -> None:
    for group in groups:
        for sock in group:
            sock.close()


def test_the_census_counts_the_accepted_connections_on_the_port(listener: socket.socket) -> None:
    """Accepted sockets count; the listening socket and the client ends (another local port,
    held by this same process) do not."""
    port = listener.getsockname()[1]
    assert count_connections(port) == 0
    clients, accepted = connect(listener, 3)
    try:
        assert count_connections(port) == 3
        accepted[0].close()
        assert count_connections(port) == 2
    finally:
        close_all(clients, accepted)


def test_the_census_counts_ipv6_connections() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        port = server.getsockname()[1]
        clients = [socket.create_connection(("::1", port)) for _ in range(2)]
        accepted = [server.accept()[0] for _ in range(2)]
        try:
            assert count_connections(port) == 2
        finally:
            close_all(clients, accepted)


def test_counts_are_shared_while_fresh(tmp_path: Path) -> None:
    now = time.monotonic_ns()
    own = tmp_path / f"1{SUFFIX}"
    write_count(own, 40, now)
    write_count(tmp_path / f"2{SUFFIX}", 3, now - 100_000)
    write_count(tmp_path / f"3{SUFFIX}", 7, now + 100_000)  # stamped just after our clock read
    write_count(tmp_path / f"4{SUFFIX}", 9, now - int((STALE_SECONDS + 0.5) * 1e9))  # stopped
    (tmp_path / f"5{SUFFIX}").write_text("garbage")
    (tmp_path / "6").write_text("")  # a heartbeat stamp, not a count
    assert sorted(read_counts(tmp_path, own, now)) == [3, 7]
    assert not list(tmp_path.glob("*.new"))  # written whole, then renamed


class Recorder:
    """A start_response that keeps the headers of each response."""

    def __init__(self) -> None:
        self.headers: list[list[tuple[str, str]]] = []

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        self.headers.append(headers)


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_a_worker_above_its_share_asks_that_many_clients_to_close(
    listener: socket.socket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """6 connections here, 0 on the other worker: 3 responses carry Connection: close, then
    none; a census that finds the counts even cancels what was still due."""
    port = listener.getsockname()[1]
    balancer = ConnectionBalancer(app, tmp_path, port)
    clients, accepted = connect(listener, 6)
    try:
        write_count(tmp_path / f"999999{SUFFIX}", 0, time.monotonic_ns())
        with caplog.at_level(logging.INFO, logger="tenantauth.balance"):
            assert balancer.census() == 3
        assert caplog.messages == [
            "asking 3 of this worker's 6 connections to reconnect (the others hold [0])"
        ]
        recorder = Recorder()
        for _ in range(5):
            assert b"".join(balancer({}, recorder)) == b"ok"
        closing = [("Connection", "close") in headers for headers in recorder.headers]
        assert closing == [True, True, True, False, False]
        assert recorder.headers[0] == [("Content-Type", "text/plain"), ("Connection", "close")]
        balancer.census()  # still 6 against 0: 3 due again
        write_count(tmp_path / f"999999{SUFFIX}", 6, time.monotonic_ns())
        assert balancer.census() == 0
        recorder = Recorder()
        balancer({}, recorder)
        assert recorder.headers == [[("Content-Type", "text/plain")]]
        published = (tmp_path / f"{os.getpid()}{SUFFIX}").read_text().split()
        assert published[0] == "6"
    finally:
        close_all(clients, accepted)


def test_a_worker_alone_or_beside_a_stopped_one_closes_nothing(
    listener: socket.socket, tmp_path: Path
) -> None:
    port = listener.getsockname()[1]
    balancer = ConnectionBalancer(app, tmp_path, port)
    clients, accepted = connect(listener, 6)
    try:
        assert balancer.census() == 0
        stale = time.monotonic_ns() - int((STALE_SECONDS + 1) * 1e9)
        write_count(tmp_path / f"999999{SUFFIX}", 0, stale)
        assert balancer.census() == 0
    finally:
        close_all(clients, accepted)


def test_the_census_thread_runs_until_the_directory_goes(
    listener: socket.socket, tmp_path: Path
) -> None:
    directory = tmp_path / "beats"
    directory.mkdir()
    balancer = ConnectionBalancer(app, directory, listener.getsockname()[1])
    thread = balancer.start()
    deadline = time.monotonic() + 5
    own = directory / f"{os.getpid()}{SUFFIX}"
    while not own.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert own.read_text().split()[0] == "0"
    while directory.exists():  # the thread may write once more meanwhile
        shutil.rmtree(directory, ignore_errors=True)
    thread.join(timeout=5)
    assert not thread.is_alive()
