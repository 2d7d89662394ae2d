"""Fault injection for the fault suite (issue 4): a private redis-server, a TCP proxy in front
of PostgreSQL, and per-scenario metrics.

Faults are injected only into what this module starts: the private Redis (its own port, its
own temporary directory, no persistence) and the proxy (its own port). The machine's shared
PostgreSQL and Redis are never stopped, paused, flushed or reconfigured; the proxy only relays
bytes to PostgreSQL, and cutting it closes *our* sockets. Every address is 127.0.0.1, every
wait has a deadline and every thread, socket and process is stopped in ``close``.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.e2e.harness import HOST, Record, Server, children_of, free_port, served_by

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_SECONDS = 10.0
STOP_SECONDS = 5.0


# --------------------------------------------------------------------------- private Redis


class PrivateRedis:
    """A redis-server owned by the suite: its own port and directory, no persistence."""

    def __init__(self, directory: Path, *, config: tuple[str, ...] = ()) -> None:
        """Prepare (not start) a server in ``directory`` on a free loopback port; ``config``
        is appended to its command line (later options win: ``--maxmemory-policy X``)."""
        self.dir = directory
        self.config = config
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.paused = False

    @property
    def url(self) -> str:
        """The URL the server under test uses (DB 0 of the private server)."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def dump(self) -> Path:
        """Where the server reads (at start) and writes (``SAVE``) its RDB snapshot."""
        return self.dir / "dump.rdb"

    def start(self, rdb: Path | None = None) -> None:
        """Start the server (same port every time) and wait until it answers PING.

        It starts empty, or with the data of the RDB snapshot ``rdb`` (see ``snapshot``):
        a Redis restored from a backup, or a replica promoted with old data.
        """
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.dump.unlink(missing_ok=True)  # a leftover dump would be loaded: not "empty"
        if rdb is not None:
            shutil.copyfile(rdb, self.dump)
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.dir)]
        argv += ["--maxmemory-policy", "noeviction", "--logfile", str(self.dir / "redis.log")]
        argv += self.config
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.paused = False
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(redis.exceptions.RedisError), self.client() as client:
                if client.ping():
                    return
            time.sleep(0.02)
        log = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"private redis-server did not start on {self.port}:\n{log}")

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (or SIGKILL) the server and wait for it; a paused server is resumed first
        so SIGTERM can be handled."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        if self.paused and not kill:
            self.resume()
        proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            proc.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_SECONDS)
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP: the server accepts TCP connections (the kernel does) but never answers."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT after ``pause``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def snapshot(self, dest: Path) -> Path:
        """``SAVE`` the data set now and move the RDB file to ``dest``; return ``dest``.

        The file is moved out of the server's directory, so a later ``start()`` is still
        empty unless it is given the snapshot.
        """
        with self.client(timeout=STOP_SECONDS) as client:
            client.save()
        shutil.move(self.dump, dest)
        return dest

    def run_id(self) -> str:
        """The server's ``run_id`` (INFO server): a new random one at every start."""
        with self.client() as client:
            return str(client.info("server")["run_id"])

    def flush(self) -> None:
        """FLUSHALL — of this private server only."""
        with self.client() as client:
            client.flushall()

    def client(self, timeout: float = 1.0) -> redis.Redis:
        """A new client of the private server (use it as a context manager)."""
        return redis.Redis(host=HOST, port=self.port, socket_timeout=timeout, retry=None)

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists; False when the server does not answer."""
        try:
            with self.client(timeout=0.5) as client:
                return bool(client.exists(key))
        except redis.exceptions.RedisError:
            return False

    def close(self) -> None:
        """Stop the server whatever state it is in."""
        if self.proc is not None and self.proc.poll() is None:
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.stop(kill=True)


# --------------------------------------------------------------------------- TCP proxy

PASS, CUT, BLACKHOLE = "pass", "cut", "blackhole"
_TICK = 0.05


class TcpProxy:
    """A threaded TCP relay on 127.0.0.1:<free port> to ``target`` with fault controls.

    ``cut()`` closes every relayed connection and resets new ones at once (the client sees a
    refused/closed connection quickly); ``blackhole()`` accepts and keeps connections but
    forwards nothing in either direction; ``delay(ms)`` sleeps before relaying each chunk;
    ``restore()`` goes back to plain relaying (connections black-holed so far are closed).
    ``turns`` counts the round trips relayed: each time the target answers after the client
    last sent (for one client at a time; a request-reply client's waits for its server).
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        """Bind the listening socket now (so the port is ours); ``start`` serves it."""
        assert target_host in (HOST, "localhost"), "only loopback targets"
        self.target = (HOST, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self.mode = PASS
        self.delay_ms = 0
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()
        self.accepted = 0
        self.turns = 0
        self._client_spoke = False

    def start(self) -> TcpProxy:
        """Start the accept thread."""
        self._spawn(self._accept_loop)
        return self

    def cut(self) -> None:
        """Close all connections and reset every new one until ``restore``."""
        self.mode = CUT
        self._close_all()

    def blackhole(self) -> None:
        """Accept connections but never forward a byte (existing ones go silent too)."""
        self.mode = BLACKHOLE

    def delay(self, ms: int) -> None:
        """Add ``ms`` milliseconds before relaying each chunk."""
        self.delay_ms = ms

    def restore(self) -> None:
        """Relay normally again, without delay; silent (black-holed) connections are closed."""
        if self.mode == BLACKHOLE:
            self._close_all()
        self.mode = PASS
        self.delay_ms = 0

    def close(self) -> None:
        """Stop every thread and close every socket."""
        self._closed.set()
        self._close_all()
        with contextlib.suppress(OSError):
            self._listener.close()
        for thread in self._threads:
            thread.join(STOP_SECONDS)

    # -- internals

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], _TICK)
                if not ready:
                    continue
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode == CUT:
                _reset(client)
                continue
            if self.mode == BLACKHOLE:
                self._track(client)  # held open, never read: the peer waits forever
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2.0)
            except OSError:
                _reset(client)
                continue
            self._track(client, upstream)
            self._spawn(self._pump, client, upstream, False)
            self._spawn(self._pump, upstream, client, True)

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._socks.update(socks)

    def _close_all(self) -> None:
        with self._lock:
            socks, self._socks = self._socks, set()
        for sock in socks:
            _reset(sock)

    def _count_turn(self, answer: bool) -> None:
        """Note who spoke; an answer after the client spoke ends one round trip. Noted
        before the bytes are relayed, so an answer cannot overtake the request it answers."""
        with self._lock:
            if answer and self._client_spoke:
                self.turns += 1
            self._client_spoke = not answer

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while not self._closed.is_set():
                if self.mode == CUT:
                    break
                ready, _, _ = select.select([src], [], [], _TICK)
                if not ready:
                    continue
                if self.mode == BLACKHOLE:
                    time.sleep(_TICK)  # leave the bytes unread: nothing is forwarded
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if self.delay_ms:
                    time.sleep(self.delay_ms / 1000)
                self._count_turn(answers)
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            with self._lock:
                self._socks.discard(src)
                self._socks.discard(dst)
            _reset(src)
            _reset(dst)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), so the peer learns at once; ignore errors."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


# --------------------------------------------------------------------------- metrics


@dataclass
class ScenarioMetrics:
    """One row of the end-of-session table."""

    scenario: str
    requests: int = 0
    wrong_accepts: int = 0
    wrong_rejects: int = 0
    errors_5xx: int = 0
    errors_503: int = 0
    conn_errors: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    recover_s: float | None = None
    #: Storage loads (database lookups) per (tenant, worker pid): the largest count and the
    #: sum, from the server's DEBUG log (see ``LoadLog``); None when the scenario did not count.
    db_loads_max: int | None = None
    db_loads_total: int | None = None
    note: str = ""
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def add(self, records: Iterable[Record], *, valid: set[str], revoked: set[str]) -> None:
        """Count ``records``: a 200 for a ``revoked`` label is a wrong accept, a 401 for a
        ``valid`` label a wrong reject; 5xx, 503 and connection errors (status 0) counted."""
        for r in records:
            self.requests += 1
            self.latencies_ms.append((r.done - r.start) / 1e6)
            if r.label in revoked and r.status == 200:
                self.wrong_accepts += 1
            if r.label in valid and r.status == 401:
                self.wrong_rejects += 1
            if r.status >= 500:
                self.errors_5xx += 1
            if r.status == 503:
                self.errors_503 += 1
            if r.status == 0:
                self.conn_errors += 1
        if self.latencies_ms:
            ordered = sorted(self.latencies_ms)
            self.p50_ms = percentile(ordered, 50)
            self.p99_ms = percentile(ordered, 99)
            self.max_ms = ordered[-1]

    def set_loads(self, loads: Counter[tuple[str, int]]) -> None:
        """Record the storage loads per (tenant, pid) of the scenario's window."""
        self.db_loads_max = max(loads.values(), default=0)
        self.db_loads_total = sum(loads.values())

    COLUMNS = (
        "scenario",
        "requests",
        "wrong accepts",
        "wrong rejects",
        "5xx",
        "503",
        "conn err",
        "p50 ms",
        "p99 ms",
        "max ms",
        "recover s",
        "DB loads/tenant/process max",
        "DB loads total",
        "note",
    )

    def cells(self) -> list[str]:
        """The row as strings, in ``COLUMNS`` order."""
        recover = "-" if self.recover_s is None else f"{self.recover_s:.2f}"
        return [
            self.scenario,
            str(self.requests),
            str(self.wrong_accepts),
            str(self.wrong_rejects),
            str(self.errors_5xx),
            str(self.errors_503),
            str(self.conn_errors),
            f"{self.p50_ms:.1f}",
            f"{self.p99_ms:.1f}",
            f"{self.max_ms:.1f}",
            recover,
            "-" if self.db_loads_max is None else str(self.db_loads_max),
            "-" if self.db_loads_total is None else str(self.db_loads_total),
            self.note,
        ]


#: The DEBUG line each storage load (database lookup of a tenant) writes, logger
#: ``tenantauth.domain.verifying.keys`` (run the server with TENANTAUTH_LOG_LEVEL=DEBUG).
LOAD_LINE = re.compile(rb"storage load tenant=(\S+) pid=(\d+)")


class LoadLog:
    """Counts storage loads in a server's log (stdout), from a mark on: what one window cost."""

    def __init__(self, path: Path) -> None:
        """Follow ``path`` (the server's stdout); the window starts at its current end."""
        self.path = path
        self.start = 0
        self.mark()

    def mark(self) -> None:
        """Start the window now: loads logged so far are not counted."""
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def text(self) -> bytes:
        """Return what the server logged since the mark (whole lines only)."""
        with self.path.open("rb") as handle:
            handle.seek(self.start)
            text = handle.read()
        return text[: text.rfind(b"\n") + 1]

    def loads(self) -> Counter[tuple[str, int]]:
        """Return the storage loads per (tenant, pid) logged since the mark."""
        return Counter((m[1].decode(), int(m[2])) for m in LOAD_LINE.finditer(self.text()))


def until_every_worker(
    server: Server, send: Callable[[], object], probe: str, timeout: float = 15.0
) -> bool:
    """Call ``send`` (one request labelled ``probe``, on a new connection so that any worker
    may answer) until every current worker of ``server`` — a replaced one included — answered
    ``probe`` with 200; return whether they all did within ``timeout``."""
    logs = [server.access_log] if server.access_log else []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        send()
        if children_of(server.proc.pid) <= served_by(logs, probe, 200):
            return True
        time.sleep(0.05)
    return False


def metric(server: Server, line_start: str) -> float:
    """The value of the first line of the server's /metrics (all workers) that starts with
    ``line_start`` (a name, with its labels if any); 0 when there is none."""
    url = f"http://{HOST}:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


WARMINGS = "tenantauth_memory_warm_seconds_count"


def until_warmed(
    server: Server, send: Callable[[], object], since: float, timeout: float = 15.0
) -> bool:
    """Call ``send`` (a verification on a new connection) until the server's workers finished
    as many warmings of their memory (docs/design.md, "Warming memory") as it has workers,
    beyond ``since`` (an earlier ``metric(server, WARMINGS)``): after it, a tenant created now
    is held by no worker until one verifies it. Returns whether they did within ``timeout``
    (at once when the run verifies without memory: ``TEST_VERIFY_MEMORY=false``)."""
    if os.environ.get("TEST_VERIFY_MEMORY", "true").lower() == "false":
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(server, WARMINGS) - since >= len(children_of(server.proc.pid)):
            return True
        send()
        time.sleep(0.05)
    return False


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def markdown_table(rows: Iterable[ScenarioMetrics]) -> list[str]:
    """The rows as a Markdown table (also readable in a terminal)."""
    lines = ["| " + " | ".join(ScenarioMetrics.COLUMNS) + " |"]
    lines.append("|" + "|".join("---" for _ in ScenarioMetrics.COLUMNS) + "|")
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return lines


def wait_for(predicate: object, timeout: float, interval: float = 0.05) -> float | None:
    """Poll ``predicate()`` until true; return the seconds it took, or None on timeout."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
