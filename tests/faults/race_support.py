"""Helpers of the race and restart scenarios (tests/faults/test_race_faults.py).

- ``SOAK`` / ``scaled``: the soak mode (``FAULTS_SOAK=1`` multiplies rounds and durations by 10).
- ``RedisMonitor``: reads the private Redis' ``MONITOR`` stream to count the interleavings a
  race test really exercised (fills of an old generation that reached Redis after the fence of
  the rotation that replaced it). Redis runs commands one at a time, so the stream's order is
  the order in which fences and fills took effect.
- ``redis_client_addrs``: which of the private Redis' client connections belong to a process
  (from /proc), so one worker's connections can be killed with ``CLIENT KILL ADDR``.
- ``FailoverLoad``: client threads that send to two servers and retry a request on the other
  server when the connection fails (what a load balancer does during a rolling restart).

Only our own processes and our own private Redis are touched. Every wait has a deadline.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import http.client
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tenantauth.crypto import jwt
from tests.e2e.harness import HOST, Record, Reply, call
from tests.support import ADMIN_TOKEN

#: ``FAULTS_SOAK=1`` (``make test-soak``): the race and restart scenarios (S7, S8, S9, S13 in
#: test_race_faults.py, the only users of ``scaled``/``rounds``) run ten times as many rounds
#: and seconds; the other fault scenarios are unchanged.
SOAK = os.environ.get("FAULTS_SOAK", "") not in ("", "0")
SOAK_FACTOR = 10


def scaled(amount: float) -> float:
    """``amount`` in the default mode, ten times it in the soak mode."""
    return amount * SOAK_FACTOR if SOAK else amount


def rounds(amount: int) -> int:
    """A number of rounds, ten times as many in the soak mode."""
    return int(scaled(amount))


# --------------------------------------------------------------------------- admin calls


@dataclass(frozen=True)
class Timed:
    """An admin call's reply and when it was sent and answered (monotonic ns, wall s)."""

    reply: Reply
    sent: int
    returned: int
    returned_wall: float


def timed_admin(port: int, method: str, path: str, body: object = None) -> Timed:
    """Send one admin call; return it with its send and return times (never asserts; a
    connection that ends without an answer gives status 0)."""
    sent = time.monotonic_ns()
    try:
        reply = call(port, method, path, token=ADMIN_TOKEN, body=body, probe="admin", timeout=15)
    except (OSError, http.client.HTTPException):  # no HTTP answer: status 0, as Records do
        reply = Reply(0, {}, b"")
    returned = time.monotonic_ns()
    return Timed(reply, sent, returned, time.time())


def rotate(port: int, tenant_id: str) -> Timed:
    """POST .../rotate once (the caller decides what a non-200 means)."""
    return timed_admin(port, "POST", f"/v1/admin/tenants/{tenant_id}/rotate", {})


def mint(port: int, tenant_id: str, sub: str = "user-42") -> str:
    """Issue a token of ``tenant_id``; return it (asserts 201)."""
    reply = call(
        port,
        "POST",
        f"/v1/admin/tenants/{tenant_id}/tokens",
        token=ADMIN_TOKEN,
        body={"sub": sub},
        probe="admin",
    )
    assert reply.status == 201, reply
    return str(reply.json()["access_token"])


def rotate_importing(port: int, tenant_id: str) -> tuple[Timed, bytes]:
    """Rotate to a secret of our own (the API's ``secret`` import); return the call and the
    new raw secret, so tokens of it can be signed here (``sign_like``) without an issue call."""
    raw = secrets.token_bytes(32)
    text = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    path = f"/v1/admin/tenants/{tenant_id}/rotate"
    return timed_admin(port, "POST", path, {"secret": text}), raw


def sign_like(template: str, key: bytes, key_version: int) -> str:
    """A token with the claims of the server-issued ``template`` (fresh times and jti), for
    the tenant's ``key_version`` (claim ``kv``), signed with ``key`` exactly as the service
    signs (``tenantauth.crypto.jwt.encode``)."""
    payload = template.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    claims.update(iat=now, nbf=now, exp=now + 900, jti=secrets.token_urlsafe(16))
    claims["kv"] = key_version
    return jwt.encode(claims, claims["tid"], key)


# --------------------------------------------------------------------------- MONITOR

_QUOTED = re.compile(rb'"((?:[^"\\]|\\.)*)"')
_MONITOR_LINE = re.compile(rb"^\+(\d+\.\d+) \[")


def _script_names() -> dict[str, str]:
    """SHA-1 of each Lua script of the Redis adapter -> the constant's name (FILL, FENCE...).

    Read from the adapter's modules, so the count follows the scripts if they change; the test
    fails (it asserts the fills it counts) if a script cannot be recognised any more.
    """
    names: dict[str, str] = {}
    modules = []
    for name in ("tenantauth.cache.redis_lua", "tenantauth.cache.redis"):
        with contextlib.suppress(ImportError):
            modules.append(__import__(name, fromlist=["_"]))
    for module in modules:
        for attr, value in vars(module).items():
            if isinstance(value, str) and "redis.call" in value:
                sha = hashlib.sha1(value.encode()).hexdigest()  # noqa: S324 - Redis' script id
                names[sha] = attr.removesuffix("_LUA")
    return names


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """One fence or fill as Redis ran it: Redis' wall-clock time, script, tenant, ARGV[1]."""

    at: float
    script: str
    tenant: str
    generation: int


class RedisMonitor:
    """Collects the fence and fill script calls the private Redis runs (``MONITOR``)."""

    def __init__(self, port: int) -> None:
        """Prepare a monitor of the Redis on ``port`` (started by ``__enter__``)."""
        self.port = port
        self.calls: list[ScriptCall] = []
        self.lines = 0
        self._names = _script_names()
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> RedisMonitor:
        """Connect, send MONITOR, wait for +OK, start reading."""
        self._sock = socket.create_connection((HOST, self.port), timeout=5)
        self._sock.sendall(b"MONITOR\r\n")
        assert self._sock.recv(5) == b"+OK\r\n"
        self._sock.settimeout(0.2)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop reading and close the connection."""
        self._stop.set()
        self._thread.join(10)
        if self._sock is not None:
            self._sock.close()

    def _read(self) -> None:
        assert self._sock is not None
        tail = b""
        while not self._stop.is_set():
            try:
                chunk = self._sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            *lines, tail = (tail + chunk).split(b"\r\n")
            for line in lines:
                self.lines += 1
                if b'"EVAL' in line[:80]:
                    self._parse(line)

    def _parse(self, line: bytes) -> None:
        stamp = _MONITOR_LINE.match(line)
        parts = [p.decode(errors="replace") for p in _QUOTED.findall(line)]
        if stamp is None or len(parts) < 5:
            return
        command, script, numkeys = parts[0].upper(), parts[1], int(parts[2])
        if command == "EVAL":
            # The body arrives escaped by MONITOR; EVAL only happens once per script and
            # connection (NOSCRIPT fallback), so such calls are skipped, not decoded.
            return
        name = self._names.get(script, "?")
        keys, argv = parts[3 : 3 + numkeys], parts[3 + numkeys :]
        if name not in ("FILL", "FENCE") or not keys or not argv:
            return
        tenant = keys[0].split("{", 1)[-1].split("}", 1)[0]
        self.calls.append(ScriptCall(float(stamp.group(1)), name, tenant, int(argv[0])))


@dataclass
class RaceCount:
    """What the MONITOR stream shows about fills racing rotations, for one tenant."""

    fences: int = 0
    fills: int = 0
    #: Fills of a generation older than the fence already set: a filler read the old row
    #: before the rotation and wrote after its fence (refused by the fill script).
    stale_after_fence: int = 0
    #: ... of which reached Redis after the rotation's HTTP call had returned.
    stale_after_return: int = 0


def count_races(calls: list[ScriptCall], tenant: str, returned_wall: list[float]) -> RaceCount:
    """Replay ``calls`` of ``tenant`` in Redis' order, tracking the fence as FENCE sets it.

    ``returned_wall[i]`` is when the i-th rotation of the tenant (the i-th FENCE in the stream)
    returned to its caller (``time.time()``; Redis stamps MONITOR lines with the same clock).
    """
    result = RaceCount()
    fence = 0
    # Fence values in the order set (strictly increasing); the i-th was set by rotation i.
    fences: list[int] = []
    for c in calls:
        if c.tenant != tenant:
            continue
        if c.script == "FENCE":
            fence = max(fence, c.generation) + 1
            fences.append(fence)
            result.fences += 1
            continue
        result.fills += 1
        if c.generation < fence:
            result.stale_after_fence += 1
            # The rotation that made this generation stale set the first fence above it
            # (a bisection: the soak's 10000 rotations made a linear scan quadratic).
            i = bisect.bisect_right(fences, c.generation)
            if i < len(returned_wall) and c.at > returned_wall[i]:
                result.stale_after_return += 1
    return result


# --------------------------------------------------------------------------- /proc sockets


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = str(fd.readlink())
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def redis_client_addrs(pid: int, redis_port: int) -> list[str]:
    """Return ``127.0.0.1:<port>`` of each established TCP connection from process ``pid``
    to the Redis on ``redis_port`` (Linux /proc; the names CLIENT LIST/KILL use)."""
    inodes = _socket_inodes(pid)
    found = []
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == redis_port:
            found.append(f"{HOST}:{int(local.split(':')[1], 16)}")
    return found


# --------------------------------------------------------------------------- failover load


@dataclass
class Attempt:
    """One try of one request on one server: connection errors are attempts with status 0."""

    server: int
    start: int
    done: int
    status: int


#: After a connection error, a client thread prefers the other server for this long (a load
#: balancer's passive health check), so one drain is not counted once per request.
EJECT_NS = 200_000_000


@dataclass
class FailoverLoad:
    """Threads looping GET /v1/verify with ``token`` over keep-alive connections to ``ports``
    (thread i prefers ``ports[i % 2]``); a request whose connection fails is retried at once
    on the other server, as a load balancer would (and the failed server is avoided for
    ``EJECT_NS``). Records one ``Record`` per request (its
    final status; 0 only if no server answered) and every ``Attempt``."""

    ports: list[int]
    token: str
    threads: int = 4
    label: str = "valid"
    reconnect_every: int = 20
    records: list[Record] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)
    #: Whether the "load balancer" routes to each server first: the test takes a server out
    #: once its old process has exited and puts it back once its new one is ready (readiness
    #: gating), so only a drain itself is discovered passively, by failed connections.
    routed: list[bool] = field(default_factory=lambda: [True, True])
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> FailoverLoad:
        """Start the threads."""
        for i in range(self.threads):
            thread = threading.Thread(target=self._loop, args=(i,), daemon=True)
            thread.start()
            self._workers.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop the threads (each finishes its current request)."""
        self._stop.set()
        for thread in self._workers:
            thread.join(30)

    def _loop(self, i: int) -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        down_until = [0, 0]  # a server that failed a connection is skipped for EJECT_NS
        used = 0
        home = i % len(self.ports)
        while not self._stop.is_set():
            used += 1
            if used % self.reconnect_every == 0:
                _close_all(conns)
            start = time.monotonic_ns()
            usable = self.routed[home] and down_until[home] < start
            order = [home, 1 - home] if usable else [1 - home, home]
            status = 0
            for server in order:
                status = self._attempt(conns, server)
                if status:
                    break
                down_until[server] = time.monotonic_ns() + EJECT_NS
            self.records.append(Record(i, self.label, start, time.monotonic_ns(), status))
        _close_all(conns)

    def _attempt(self, conns: dict[int, http.client.HTTPConnection], server: int) -> int:
        start = time.monotonic_ns()
        conn = conns.get(server) or http.client.HTTPConnection(HOST, self.ports[server], 10)
        conns[server] = conn
        try:
            conn.request("GET", "/v1/verify", headers=_headers(self.token, self.label))
            with conn.getresponse() as response:
                response.read()
                status = response.status
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            del conns[server]
        self.attempts.append(Attempt(server, start, time.monotonic_ns(), status))
        return status


def _headers(token: str, label: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "X-Probe": label}


def _close_all(conns: dict[int, http.client.HTTPConnection]) -> None:
    for conn in conns.values():
        conn.close()
    conns.clear()


def overlaps_window(
    start: int, end: int, windows: Iterator[tuple[int, int]] | list[tuple[int, int]]
) -> bool:
    """Whether the span ``start``..``end`` (monotonic ns) meets one of the (start, end)
    ``windows``: an attempt sent a moment before a SIGTERM that fails once the server closes
    its connection failed because of that drain, though it started before it."""
    return any(start <= w_end and w_start <= end for w_start, w_end in windows)
