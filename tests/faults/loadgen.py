"""Many concurrent HTTP/1.1 keep-alive clients from one thread (asyncio), for the fault suite.

``Load`` loops ``GET /v1/verify`` over a mix of tokens on N connections (optionally paced to a
request rate) in a background thread; ``burst`` opens N connections, warms each with one
request, runs a callback (the fault) and then sends one request on every connection at once.
The e2e ``Fleet`` (one process per client) cannot hold a thousand connections; this can.

Every request becomes a ``Record`` (status 0: no HTTP answer). Bodies of non-200 answers are
kept, normalised (``request_id`` and ``instance`` dropped), so a test can check that failures
are uniform. Every wait has a deadline; every socket is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tests.e2e.harness import HOST, Record

REQUEST_SECONDS = 10.0
CONNECT_AT_ONCE = 100
#: Per-request fields of a problem document that differ by design (RFC 9457 §3.1.5 instance).
VARYING_FIELDS = ("request_id", "instance")


@dataclass(frozen=True, slots=True)
class Shot:
    """One request to send: its label (for records and the X-Probe header) and its token."""

    label: str
    token: str


#: Picks the next shot; gets the connection's own seeded random generator.
Mix = Callable[[random.Random], Shot]


class _Conn:
    """One keep-alive connection; reopened after the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        self.used = 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def exchange(self, shot: Shot) -> tuple[int, bytes]:
        """Send one GET /v1/verify; return (status, body). Raises OSError and friends."""
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.used += 1
        self.writer.write(
            f"GET /v1/verify HTTP/1.1\r\nHost: {HOST}\r\nX-Probe: {shot.label}\r\n"
            f"Authorization: Bearer {shot.token}\r\n\r\n".encode()
        )
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed before the status line")
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split()[1]), body


def normalised(body: bytes) -> str:
    """The body as canonical JSON without the fields that vary per request (or as text)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")
    if isinstance(doc, dict):
        for name in VARYING_FIELDS:
            doc.pop(name, None)
    return json.dumps(doc, sort_keys=True)


class _Recorder:
    """Collects records and failure bodies (one event loop thread writes, so no lock)."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.bodies: Counter[tuple[str, int, str]] = Counter()
        self.retries = 0

    async def send(self, client: int, conn: _Conn, shot: Shot, *, retry_stale: bool) -> None:
        """One request on ``conn``; a keep-alive connection the server closed while idle is
        retried once on a new connection (allowed for GET, RFC 9112 §9.3.1)."""
        start = time.monotonic_ns()
        fresh = conn.writer is None or conn.used == 0
        try:
            status, body = await asyncio.wait_for(conn.exchange(shot), REQUEST_SECONDS)
        except (OSError, EOFError, ValueError, asyncio.IncompleteReadError, TimeoutError):
            conn.close()
            if retry_stale and not fresh:
                self.retries += 1
                await self.send(client, conn, shot, retry_stale=False)
                return
            status, body = 0, b""
        self.records.append(Record(client, shot.label, start, time.monotonic_ns(), status))
        if status != 200:
            self.bodies[(shot.label, status, normalised(body))] += 1


class Load:
    """``connections`` keep-alive clients looping over ``mix`` in a background thread.

    With ``rate`` (requests per second, all connections together) each connection is paced;
    without it each sends its next request as soon as the last was answered. Use it as a
    context manager; ``stop()`` returns the records, ordered by send time.
    """

    def __init__(
        self,
        port: int,
        mix: Mix,
        *,
        connections: int,
        rate: float | None = None,
        reconnect_every: int = 50,
        max_seconds: float = 60.0,
        seed: int = 0,
    ) -> None:
        """Prepare (not start) the clients."""
        self.port, self.mix, self.connections = port, mix, connections
        self.interval = connections / rate if rate else 0.0
        self.reconnect_every = reconnect_every
        self.max_seconds = max_seconds
        self.seed = seed
        self.recorder = _Recorder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        """Start the clients."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the clients (if ``stop`` was not called)."""
        self._stop.set()
        self._thread.join(REQUEST_SECONDS + 5)

    def stop(self) -> list[Record]:
        """Stop after the requests in flight; return every record, ordered by send time."""
        self._stop.set()
        self._thread.join(REQUEST_SECONDS + 5)
        assert not self._thread.is_alive(), "load clients did not stop"
        return sorted(self.recorder.records, key=lambda r: r.start)

    @property
    def bodies(self) -> Counter[tuple[str, int, str]]:
        """(label, status, normalised body) counts of every non-200 answer."""
        return self.recorder.bodies

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.connections)))

    async def _client(self, i: int) -> None:
        rng = random.Random(self.seed * 100_003 + i)
        conn = _Conn(self.port)
        deadline = time.monotonic() + self.max_seconds
        next_at = time.monotonic() + rng.random() * self.interval  # spread the start
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if self.interval:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += self.interval
                if conn.used >= self.reconnect_every:
                    conn.close()  # a new connection may reach another worker
                await self.recorder.send(i, conn, self.mix(rng), retry_stale=True)
        finally:
            conn.close()


def burst(
    port: int, warm: Shot, shots: Sequence[Shot], before: Callable[[], None]
) -> tuple[list[Record], _Recorder]:
    """Open one connection per shot, send ``warm`` on each (so every connection is accepted
    and kept alive by some worker), call ``before()``, then send all ``shots`` at once.

    Returns the records of the shots (not of the warm-up) and the recorder (bodies,
    retries). Raises AssertionError if a warm-up request was not answered 200.
    """
    return asyncio.run(_burst(port, warm, shots, before))


async def _burst(
    port: int, warm: Shot, shots: Sequence[Shot], before: Callable[[], None]
) -> tuple[list[Record], _Recorder]:
    conns = [_Conn(port) for _ in shots]
    warmup, recorder = _Recorder(), _Recorder()
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def warm_one(i: int) -> None:
        async with gate:
            await warmup.send(i, conns[i], warm, retry_stale=False)

    try:
        await asyncio.gather(*(warm_one(i) for i in range(len(conns))))
        codes = Counter(r.status for r in warmup.records)
        assert codes == Counter({200: len(conns)}), f"warm-up answers {codes}"
        before()
        go = asyncio.Event()

        async def fire(i: int) -> None:
            await go.wait()
            await recorder.send(i, conns[i], shots[i], retry_stale=True)

        tasks = [asyncio.ensure_future(fire(i)) for i in range(len(conns))]
        await asyncio.sleep(0)  # every task is parked on the gate
        go.set()
        await asyncio.gather(*tasks)
    finally:
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()
    return sorted(recorder.records, key=lambda r: r.start), recorder
