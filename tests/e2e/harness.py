"""Helpers for the end-to-end suite: real `tenantauth serve` processes, HTTP calls, load clients.

Everything here is bounded: every wait has a deadline, every process started is stopped
(SIGTERM, then SIGKILL of its process group after a timeout), every socket is closed.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.support import ADMIN_TOKEN, ISSUER, MASTER_KEY_B64

HOST = "127.0.0.1"
#: The `tenantauth` console script of the interpreter running the tests (cli has no __main__).
TENANTAUTH = Path(sys.executable).with_name("tenantauth")
CLIENT_SCRIPT = Path(__file__).with_name("verify_client.py")
#: One access-log line per request: the X-Probe label, the worker pid as <pid>, the status.
ACCESS_LOG_FORMAT = "%({x-probe}i)s %(p)s %(s)s"
#: The same line under granian (tenantauth.granian_conf adds the pid atom), the pid bare.
GRANIAN_ACCESS_LOG_FORMAT = "%(header{x-probe})s %(pid)d %(status)d"
READY_SECONDS = 20.0
STOP_SECONDS = 10.0


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def scrubbed_environ(**settings: str) -> dict[str, str]:
    """Return this process's environment without TENANTAUTH_*/GUNICORN_*, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTAUTH_", "GUNICORN_"))}
    env.update(settings)
    return env


def production_environ(pg_url: str, redis_url: str, access_log: Path) -> dict[str, str]:
    """Return the environment of a production-mode server (PostgreSQL + Redis)."""
    env = scrubbed_environ(
        TENANTAUTH_DATABASE_URL=pg_url,
        TENANTAUTH_REDIS_URL=redis_url,
        TENANTAUTH_MASTER_KEY=MASTER_KEY_B64,
        TENANTAUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        TENANTAUTH_ISSUER=ISSUER,
        # `serve` refuses pending migrations; with this it applies them before exec'ing gunicorn.
        TENANTAUTH_AUTO_MIGRATE="true",
        TENANTAUTH_LOG_LEVEL="WARNING",  # not one INFO line per rejected token
        TENANTAUTH_ACCESS_LOG=str(access_log),
        GUNICORN_CMD_ARGS=f"--access-logformat '{ACCESS_LOG_FORMAT}'",
        TENANTAUTH_ACCESS_LOG_FORMAT=GRANIAN_ACCESS_LOG_FORMAT,
    )
    return env | _verify_memory()


def _verify_memory() -> dict[str, str]:
    """The production default (verify from memory), unless ``TEST_VERIFY_MEMORY`` says
    otherwise (``TEST_VERIFY_MEMORY=false make test-faults`` runs the exact path)."""
    chosen = os.environ.get("TEST_VERIFY_MEMORY")
    return {} if chosen is None else {"TENANTAUTH_VERIFY_MEMORY": chosen}


# --------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Reply:
    """A complete HTTP response."""

    status: int
    headers: http.client.HTTPMessage  # names case-insensitive: granian sends them lower case
    body: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body)


def call(
    port: int,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    probe: str | None = None,
    timeout: float = 10.0,
) -> Reply:
    """Send one request on a new connection (so any worker may answer) and close it."""
    headers = {"Connection": "close"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if probe is not None:
        headers["X-Probe"] = probe
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=headers)
        with conn.getresponse() as response:
            return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


class Admin:
    """The admin API of one server, asserting the documented success statuses."""

    def __init__(self, port: int, token: str = ADMIN_TOKEN) -> None:
        """Talk to the server on ``port`` with ``token``."""
        self.port = port
        self.token = token

    def create_tenant(
        self, tenant_id: str, name: str | None = None, alg: str | None = None
    ) -> dict[str, Any]:
        """Create a tenant (signing with ``alg``, HS256 by default); return its JSON."""
        body = {"id": tenant_id, "name": name or tenant_id} | ({"alg": alg} if alg else {})
        reply = self._call("POST", "/v1/admin/tenants", body)
        assert reply.status == 201, reply
        return reply.json()  # type: ignore[no-any-return]

    def issue(self, tenant_id: str, sub: str = "user-42") -> str:
        """Mint a token for ``sub``; return it."""
        reply = self._call("POST", f"/v1/admin/tenants/{tenant_id}/tokens", {"sub": sub})
        assert reply.status == 201, reply
        return str(reply.json()["access_token"])

    def rotate(self, tenant_id: str, alg: str | None = None) -> tuple[dict[str, Any], int, int]:
        """Rotate (to a key of ``alg``; default: the tenant's); return the JSON, and
        monotonic_ns before sending and after the reply."""
        body = {"alg": alg} if alg else {}
        return self._timed("POST", f"/v1/admin/tenants/{tenant_id}/rotate", body, 200)

    def rollover(self, tenant_id: str, grace: int) -> tuple[dict[str, Any], int, int]:
        """Roll the tenant's key over (issue 15) with ``grace`` seconds for the previous key;
        return the JSON and the call's start/return times."""
        path = f"/v1/admin/tenants/{tenant_id}/rollover"
        return self._timed("POST", path, {"grace": grace}, 200)

    def set_status(self, tenant_id: str, status: str) -> tuple[dict[str, Any], int, int]:
        """PATCH the status; return the JSON and the call's start/return times."""
        return self._timed("PATCH", f"/v1/admin/tenants/{tenant_id}", {"status": status}, 200)

    def delete(self, tenant_id: str) -> tuple[dict[str, Any], int, int]:
        """DELETE the tenant; return an empty dict and the call's start/return times."""
        return self._timed("DELETE", f"/v1/admin/tenants/{tenant_id}", None, 204)

    def _timed(
        self, method: str, path: str, body: Any, expect: int
    ) -> tuple[dict[str, Any], int, int]:
        start = time.monotonic_ns()
        reply = self._call(method, path, body)
        returned = time.monotonic_ns()
        assert reply.status == expect, reply
        return (reply.json() if reply.body else {}), start, returned

    def _call(self, method: str, path: str, body: Any) -> Reply:
        return call(self.port, method, path, token=self.token, body=body, probe="admin")


# --------------------------------------------------------------------------- servers

#: The ``launch`` fixture: ``launch(name, env, workers=3, port=None, ready=True) -> Server``.
Launch = Callable[..., "Server"]


@dataclass
class Server:
    """One `tenantauth serve` process tree (gunicorn's or granian's main process and its
    workers) on loopback."""

    name: str
    port: int
    workers: int
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    access_log: AccessLog | None = None
    pids: frozenset[int] = frozenset()
    metrics_port: int = 0

    def output(self) -> str:
        """Return everything the server printed so far."""
        out = self.stdout.read_text(errors="replace")
        err = self.stderr.read_text(errors="replace")
        return f"--- {self.name} stdout ---\n{out}--- {self.name} stderr ---\n{err}"

    def stop(self) -> None:
        """SIGTERM the master (graceful); SIGKILL its process group if it does not exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only our processes
                self.proc.wait(STOP_SECONDS)
        for pid in self.pids:  # workers exit with the master; make sure, by pid
            _wait_gone(pid, self.proc.pid)


def start_server(
    tmp_path: Path, name: str, env: Mapping[str, str], *, workers: int, port: int | None = None
) -> Server:
    """Start `tenantauth serve` without waiting; see ``wait_ready``. Its metrics port is a
    free one unless ``env`` sets ``TENANTAUTH_METRICS_PORT``."""
    port = port or free_port()
    metrics_port = free_port()
    while metrics_port == port:  # free_port() may hand out the same (still unbound) port twice
        metrics_port = free_port()
    env = {"TENANTAUTH_METRICS_PORT": str(metrics_port), **env}
    stdout, stderr = tmp_path / f"{name}.stdout", tmp_path / f"{name}.stderr"
    argv = [str(TENANTAUTH), "serve", "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers)]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=tmp_path,
            start_new_session=True,
        )
    log = env.get("TENANTAUTH_ACCESS_LOG")
    access = AccessLog(Path(log)) if log else None
    metrics_port = int(env["TENANTAUTH_METRICS_PORT"])
    return Server(name, port, workers, proc, stdout, stderr, access, metrics_port=metrics_port)


def wait_ready(server: Server, timeout: float = READY_SECONDS) -> None:
    """Wait for /readyz and for every worker to be forked; fail with the output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        try:
            ready = call(server.port, "GET", "/readyz", timeout=2).status == 200
        except OSError:
            ready = False
        if ready:
            pids = children_of(server.proc.pid)
            if len(pids) == server.workers:
                server.pids = frozenset(pids)
                return
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"{server.name} did not become ready in {timeout} s (see its output below)")


def children_of(pid: int) -> set[int]:
    """Return the pids whose parent is ``pid`` (from /proc; Linux only)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def stop_process(pid: int, timeout: float = 5.0) -> None:
    """SIGSTOP ``pid`` and return once every thread of it is stopped (``T`` in /proc).

    ``kill`` returns when the signal is queued: a process running on another core goes on
    for a moment, and can still accept a connection sent right after (which then hangs). A
    test of what a *stopped* process does must wait for the stop. Raises AssertionError if
    it has not stopped within ``timeout``."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # a thread ended while we looked
                continue
            states.append(text[text.rindex(")") + 2])
        if states and all(state in "Tt" for state in states):
            return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} did not stop within {timeout} s")


def _wait_gone(pid: int, group: int, timeout: float = STOP_SECONDS) -> None:
    """Wait until ``pid`` is no longer a member of process group ``group``; then SIGKILL it."""
    deadline = time.monotonic() + timeout
    while _in_group(pid, group) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _in_group(pid, group):
        os.kill(pid, signal.SIGKILL)


def _in_group(pid: int, group: int) -> bool:
    try:
        return os.getpgid(pid) == group
    except ProcessLookupError:
        return False


# --------------------------------------------------------------------------- access log


class AccessLog:
    """Reads a server's access log as it grows: which worker answered which probe, how."""

    def __init__(self, path: Path) -> None:
        """Follow ``path`` (it may not exist yet)."""
        self.path = path
        self._offset = 0
        self._tail = b""
        self.lines: Counter[tuple[str, int, int]] = Counter()  # (probe, pid, status) -> count

    def poll(self) -> None:
        """Read lines appended since the last call."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        *complete, self._tail = (self._tail + chunk).split(b"\n")
        for line in complete:
            probe, pid, status = line.decode().split()
            self.lines[(probe, int(pid.strip("<>")), int(status))] += 1


def served_by(logs: Iterable[AccessLog], probe: str, status: int) -> set[int]:
    """Return the worker pids that answered ``probe`` with ``status``."""
    pids = set()
    for log in logs:
        log.poll()
        pids |= {pid for (p, pid, s) in log.lines if p == probe and s == status}
    return pids


def wait_served(
    servers: list[Server],
    probe: str,
    status: int = 200,
    timeout: float = 5.0,
    *,
    everywhere: bool = True,
) -> list[str]:
    """Wait until every worker of every server (or, unless ``everywhere``, any one worker)
    answered ``probe`` with ``status``.

    Returns a list with one problem (the workers that never did) if ``timeout`` passed first,
    else an empty list; scenarios collect these and assert at the end, after their summary.
    """
    want = set().union(*(s.pids for s in servers))
    logs = [s.access_log for s in servers if s.access_log]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = served_by(logs, probe, status)
        if want <= seen or (seen and not everywhere):
            return []
        time.sleep(0.02)
    missing = sorted(want - served_by(logs, probe, status))
    return [f"workers {missing} never answered {probe!r} with {status} within {timeout} s"]


def wait_every_worker_answered(server: Server, probe: str = "boot", timeout: float = 15.0) -> None:
    """Send /healthz probes labelled ``probe`` until every worker of ``server`` has answered
    one (a forked worker may still be importing the app); fail if ``timeout`` passes first."""
    logs = [server.access_log] if server.access_log else []
    deadline = time.monotonic() + timeout
    while not set(server.pids) <= served_by(logs, probe, 200):
        assert time.monotonic() < deadline, f"not every worker answered {probe!r} in {timeout} s"
        call(server.port, "GET", "/healthz", probe=probe)
        time.sleep(0.02)


def server_errors(servers: list[Server]) -> Counter[tuple[str, int]]:
    """Return (probe, status) counts of every 5xx any worker answered."""
    found: Counter[tuple[str, int]] = Counter()
    for server in servers:
        if server.access_log:
            server.access_log.poll()
            for (probe, _, status), count in server.access_log.lines.items():
                if status >= 500:
                    found[(probe, status)] += count
    return found


# --------------------------------------------------------------------------- load clients


@dataclass(frozen=True, slots=True)
class Record:
    """One request of a load client: its label, send start and end (monotonic ns), status."""

    client: int
    label: str
    start: int
    done: int
    status: int


class Fleet:
    """Load-client processes (``verify_client.py``) looping GET /v1/verify."""

    def __init__(
        self,
        tmp_path: Path,
        ports: list[int],
        clients: int,
        *,
        max_seconds: float = 60.0,
        reconnect_every: int = 20,
        extra_every: int = 5,
    ) -> None:
        """Prepare ``clients`` processes, spread round-robin over ``ports``."""
        self._dir = tmp_path / "clients"
        self._dir.mkdir(exist_ok=True)
        self._configs = [
            {
                "host": HOST,
                "port": ports[i % len(ports)],
                "reconnect_every": reconnect_every,
                "extra_every": extra_every,
                "max_seconds": max_seconds,
                "out": str(self._dir / f"client{i}.records"),
            }
            for i in range(clients)
        ]
        self._procs: list[subprocess.Popen[str]] = []
        self.records: list[Record] = []

    def __enter__(self) -> Fleet:
        """Start the clients (idle until given a token)."""
        for config in self._configs:
            self._procs.append(
                subprocess.Popen(
                    [sys.executable, str(CLIENT_SCRIPT), json.dumps(config)],
                    stdin=subprocess.PIPE,
                    text=True,
                )
            )
        return self

    def token(self, label: str, jwt: str) -> None:
        """Make every client verify ``jwt`` from now on, recording under ``label``."""
        self._send(f"token {label} {jwt}")

    def bystander(self, label: str, jwt: str) -> None:
        """Make every client also verify ``jwt`` now and then (a bystander token)."""
        self._send(f"extra {label} {jwt}")

    def stop(self) -> list[Record]:
        """Stop the clients and return their records, ordered by send time."""
        for proc in self._procs:
            if proc.stdin and not proc.stdin.closed:
                try:
                    proc.stdin.write("stop\n")
                    proc.stdin.close()
                except BrokenPipeError:  # it already ended (max_seconds)
                    pass
        for proc in self._procs:
            try:
                proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_SECONDS)
        codes = [p.returncode for p in self._procs]
        self._procs = []
        assert codes == [0] * len(codes), f"load clients failed: exit codes {codes}"
        self.records = sorted(self._read_records(), key=lambda r: r.start)
        return self.records

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop clients still running (when the test failed before ``stop``)."""
        if self._procs:
            for proc in self._procs:
                proc.kill()
                proc.wait(STOP_SECONDS)
                if proc.stdin:
                    proc.stdin.close()
            self._procs = []

    def _send(self, line: str) -> None:
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.write(line + "\n")
            proc.stdin.flush()

    def _read_records(self) -> Iterable[Record]:
        for i, config in enumerate(self._configs):
            for line in Path(str(config["out"])).read_text(encoding="ascii").splitlines():
                label, start, done, status = line.split()
                yield Record(i, label, int(start), int(done), int(status))


# --------------------------------------------------------------------------- verdicts


@dataclass
class Window:
    """What the clients saw for one token around one admin call that must revoke it."""

    label: str
    event: str
    sent: int = 0
    accepted_before: int = 0
    accepted_after: int = 0
    rejected_after: int = 0
    in_flight: Counter[int] = field(default_factory=Counter)
    max_latency_ms: float = 0.0
    late_accepts: list[Record] = field(default_factory=list)

    def summary(self) -> str:
        """Return one human-readable line."""
        return (
            f"{self.event:<22} token {self.label:<13} {self.sent:6d} requests; 200s before "
            f"{self.accepted_before:5d}, after {self.accepted_after}; 401s after "
            f"{self.rejected_after:5d}; in flight {dict(self.in_flight)}; "
            f"max latency {self.max_latency_ms:.1f} ms"
        )


def window(
    records: Iterable[Record], label: str, event: str, returned: int, until: int | None = None
) -> Window:
    """Classify the requests of ``label`` around a revoking call that returned at ``returned``.

    "After" means the request's send *started* after the call returned (and it ended before
    ``until``, when a later call made the token valid again); requests sent earlier but still
    running at that moment are "in flight" and may go either way.
    """
    result = Window(label, event)
    for r in records:
        if r.label != label:
            continue
        result.sent += 1
        result.max_latency_ms = max(result.max_latency_ms, (r.done - r.start) / 1e6)
        if r.start > returned:
            if until is not None and r.done >= until:
                continue
            if r.status == 200:
                result.accepted_after += 1
                result.late_accepts.append(r)
            elif r.status == 401:
                result.rejected_after += 1
        elif r.start <= returned < r.done:
            result.in_flight[r.status] += 1
        elif r.done <= returned and r.status == 200:
            result.accepted_before += 1
    return result


def combined(windows: list[Window]) -> Window:
    """Return the sum of several windows (for a one-line summary)."""
    labels = f"{windows[0].label}..{windows[-1].label}" if windows else "-"
    total = Window(labels, f"{len(windows)} rotations")
    for w in windows:
        total.sent += w.sent
        total.accepted_before += w.accepted_before
        total.accepted_after += w.accepted_after
        total.rejected_after += w.rejected_after
        total.in_flight += w.in_flight
        total.max_latency_ms = max(total.max_latency_ms, w.max_latency_ms)
        total.late_accepts += w.late_accepts
    return total


def statuses(records: Iterable[Record], label: str | None = None) -> Counter[int]:
    """Return the status counts of all records (or of one label)."""
    return Counter(r.status for r in records if label is None or r.label == label)
