"""Keep-alive connections spread evenly over granian workers that share one accept queue.

Why (docs/design.md, "One accept queue, and its price"): the workers inherit one listening
socket, so a hung worker takes no new connections. But granian accepts in Rust, greedily, and a
burst of new connections (wrk's 32, a gateway opening its upstream pool) can all land on one
worker; keep-alive then holds them there while the other worker idles. That happened in about
a third of the benchmark runs, each served at half rate.

What this does, in each worker of two or more (``granian_conf.load_app`` composes it; not
under gunicorn, whose benchmark runs were never lopsided):

- **Census.** A daemon thread counts the worker's HTTP connections every ``PERIOD`` (its
  sockets, from ``/proc/self/fd``, whose local port is the bound one, the listening socket
  aside) and writes the count, stamped with ``CLOCK_MONOTONIC``, to
  ``<pid>.connections`` in the watchdog's heartbeat directory (tmpfs), where it reads the other
  workers' counts. A count older than ``STALE_SECONDS`` is not counted: that worker is stopped,
  hung or gone, and connections closed for its sake would only land on the others.
- **Rule** (``connections_to_close``). Over the live workers the fair share is the total
  rounded up over their number; a worker above it, and ``MIN_GAP`` or more above the least
  loaded worker, asks its excess to close.
- **Close.** The next responses of that worker carry ``Connection: close`` (RFC 9112 §9.6):
  the client (wrk, nginx, an HTTP library) reconnects, and the new connection goes to the shared
  queue, where either worker may take it. Only the worker above its share closes, so each
  round moves about half the excess and the counts converge; nothing is lost, since a
  connection closes only after a complete response.

Cost: one check of an empty deque per request; the census takes 0.2–0.4 ms per round with a few
dozen connections and grows with the worker's connections, so its period stretches to keep it
under ``MAX_DUTY`` of a core.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("tenantauth.balance")
#: Seconds between two censuses (at least: see ``MAX_DUTY``).
PERIOD = 0.25
#: A worker's count older than this is not counted (stopped, hung or gone).
STALE_SECONDS = 1.0
#: A worker closes connections only when it holds this many or more above the least loaded
#: worker: one more than another is as even as an odd total can be, and must not flap.
MIN_GAP = 2
#: Largest share of one core the census may take: the period grows to cost / MAX_DUTY.
MAX_DUTY = 0.02
#: The file name suffix of a worker's count, beside its heartbeat stamp.
SUFFIX = ".connections"
_INET = (socket.AF_INET, socket.AF_INET6)
_FDS = Path("/proc/self/fd")
_CLOSE = ("Connection", "close")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def connections_to_close(mine: int, others: Sequence[int]) -> int:
    """Return how many of its ``mine`` connections a worker should close, given the counts of
    the other live workers: its excess over the fair share (the total rounded up over the
    workers), when it holds ``MIN_GAP`` or more above the least loaded; else 0.

    A spread where no worker holds more than one above another is left as it is, so the
    counts settle there and never flap."""
    if not others or mine - min(others) < MIN_GAP:
        return 0
    fair = -(-(mine + sum(others)) // (len(others) + 1))
    return max(0, mine - fair)


def count_connections(port: int) -> int:
    """Return how many TCP connections on local ``port`` this process holds (accepted ones:
    the listening socket and connections to other ports are not counted).

    Looks at each of this process's sockets through a socket object laid over its descriptor
    and detached again, so nothing is closed or changed: a few system calls per socket,
    growing with this worker's connections only (``/proc/net/tcp`` lists the whole network
    namespace, TIME_WAIT included: 2.4 ms for 1,300 sockets, against 0.2–0.4 ms here).
    """
    count = 0
    for fd in _FDS.iterdir():
        try:
            if not fd.readlink().name.startswith("socket:"):
                continue
            sock = socket.socket(fileno=int(fd.name))  # reads family and type; changes nothing
        except OSError:  # closed since the listing
            continue
        try:
            count += _is_connection_on(sock, port)
        except OSError:
            pass
        finally:
            sock.detach()  # the descriptor stays the server's
    return count


def _is_connection_on(sock: socket.socket, port: int) -> bool:
    return (
        sock.family in _INET
        and sock.type == socket.SOCK_STREAM
        and sock.getsockname()[1] == port
        and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    )


def write_count(path: Path, count: int, now_ns: int) -> None:
    """Replace ``path`` with ``"<count> <now_ns>"`` (atomically: readers see the old or the
    new count, never part of one)."""
    partial = path.with_name(path.name + ".new")
    partial.write_text(f"{count} {now_ns}", encoding="ascii")
    partial.replace(path)


def read_counts(directory: Path, own: Path, now_ns: int) -> list[int]:
    """Return the counts of the other workers in ``directory`` stamped within
    ``STALE_SECONDS`` of ``now_ns`` (``own`` excluded; unreadable files skipped)."""
    counts = []
    for path in directory.glob(f"*{SUFFIX}"):
        if path == own:
            continue
        try:
            count, stamp = (int(field) for field in path.read_text(encoding="ascii").split())
        except (OSError, ValueError):  # removed meanwhile, or not one of ours
            continue
        if abs(now_ns - stamp) <= STALE_SECONDS * 1e9:  # stamped just after now_ns: fresh
            counts.append(count)
    return counts


class ConnectionBalancer:
    """WSGI middleware: adds ``Connection: close`` to as many responses as the last census
    asked this worker to give up (see the module docstring)."""

    def __init__(self, app: WSGIApp, directory: Path, port: int) -> None:
        """Wrap ``app``; counts are shared in ``directory``, for connections on ``port``.
        Call ``start`` to run the census."""
        self._app = app
        self._directory = directory
        self._port = port
        self._own = directory / f"{os.getpid()}{SUFFIX}"
        #: One item per connection still to close; ``deque.pop`` is atomic across threads.
        self._closing: deque[None] = deque()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Any:
        """Answer through the app; ask the client to close this connection if one is due."""
        if not self._closing:
            return self._app(environ, start_response)
        try:
            self._closing.pop()
        except IndexError:  # another request thread took the last one
            return self._app(environ, start_response)

        def closing(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, _CLOSE], exc_info)

        return self._app(environ, closing)

    def census(self, now_ns: int | None = None) -> int:
        """Count this worker's connections, publish the count, read the others'; return how
        many connections are to close from now on (replacing what was still due)."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        mine = count_connections(self._port)
        write_count(self._own, mine, now_ns)
        others = read_counts(self._directory, self._own, now_ns)
        due = connections_to_close(mine, others)
        self._closing.clear()
        self._closing.extend([None] * due)
        if due:  # at most one line a census, and only while the spread is uneven
            log.info(
                "asking %d of this worker's %d connections to reconnect (the others hold %s)",
                due,
                mine,
                sorted(others),
            )
        return due

    def start(self) -> threading.Thread:
        """Run the census from a daemon thread while the directory exists; return it."""

        def run() -> None:
            while self._directory.is_dir():
                started = time.perf_counter()
                try:
                    self.census()
                except OSError:  # the directory went with the main process
                    return
                except Exception:  # say it once, loudly, rather than die silent
                    log.exception("connection balancing stopped; the worker serves on")
                    return
                spent = time.perf_counter() - started
                time.sleep(max(PERIOD, spent / MAX_DUTY))

        thread = threading.Thread(target=run, name="tenantauth-balance", daemon=True)
        thread.start()
        return thread
