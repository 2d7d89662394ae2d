"""What gunicorn's arbiter does for hung and crashing workers, done for granian.

granian replaces a worker that exits, but not one that hangs, and it stops the whole server
when a worker dies twice within 5.5 s of being respawned, however long it had served. gunicorn
kills a worker that misses its heartbeat for ``timeout`` seconds and replaces every worker that
dies after it has booted (it halts only on a failed boot). This module gives ``tenantauth serve
--server granian`` the same two rules (docs/design.md, "The HTTP server"):

- **Heartbeat (worker).** Once the app is loaded, a daemon thread stamps ``<dir>/<pid>`` every
  ``interval`` seconds: the file's mtime is set to ``CLOCK_MONOTONIC`` (one clock for every
  process of the host, and no wall-clock step can fake a beat or a silence). The thread needs
  the interpreter: a worker that is stopped (SIGSTOP), deadlocked, or stuck in code that holds
  the GIL stops beating. A request thread blocked on I/O does not (as under gunicorn's gthread
  worker, whose heartbeat is its main loop): the database and Redis timeouts bound those.
- **Watchdog (main process).** A daemon thread reads every worker's stamp each ``interval``. A
  worker whose last beat is older than ``timeout`` is sent SIGKILL (it may be stopped, so no
  signal it must handle itself); granian sees it exit and respawns it, as after any crash. A
  worker that has beaten at least once has booted: the watchdog takes it out of granian's
  crash-loop rule, so a booted worker that dies is always replaced; one that dies before its
  first beat, twice within 5.5 s, still stops the server (a failed boot, as gunicorn halts).

The directory is made on tmpfs when there is one (``/dev/shm``: no disk I/O, writable under a
read-only root filesystem), by the main process before the workers start, and removed with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("tenantauth.watchdog")
#: The longest pause between two beats (and two checks); shorter for short timeouts.
MAX_INTERVAL = 1.0


def interval_for(timeout: float) -> float:
    """Return the beat and check period for ``timeout``: a quarter of it, at most 1 s, so a
    worker misses several beats before it counts as hung."""
    return min(MAX_INTERVAL, timeout / 4)


def make_directory() -> Path:
    """Create and return an empty heartbeat directory, on tmpfs when the host has one."""
    shm = Path("/dev/shm")  # noqa: S108 - tmpfs, as gunicorn's worker_tmp_dir in gunicorn_conf
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="tenantauth-heartbeat-", dir=base))


def beat(path: Path) -> None:
    """Stamp ``path`` (create it if needed) with the current ``CLOCK_MONOTONIC`` as mtime."""
    now = time.monotonic_ns()
    path.touch()
    os.utime(path, ns=(now, now))


def age(path: Path, now_ns: int) -> float | None:
    """Return the seconds since ``path``'s last beat at ``now_ns``, or None if it has none."""
    try:
        stamped = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    return (now_ns - stamped) / 1e9


def start_heartbeat(directory: Path, interval: float) -> threading.Thread:
    """In a worker whose app is loaded: beat once now, then every ``interval`` seconds from a
    daemon thread while the process lives and the directory exists; return the thread."""
    path = directory / str(os.getpid())
    beat(path)

    def run() -> None:
        while directory.is_dir():
            time.sleep(interval)
            with contextlib.suppress(OSError):  # the directory went with the main process
                beat(path)

    thread = threading.Thread(target=run, name="tenantauth-heartbeat", daemon=True)
    thread.start()
    return thread


class Worker(Protocol):
    """What the watchdog reads of a granian worker (``granian.server.mp.WorkerProcess``)."""

    idx: int

    @property
    def inner(self) -> Any:
        """The ``multiprocessing.Process`` (its ``pid``)."""


@dataclass
class Watchdog:
    """Kills workers whose heartbeat is older than ``timeout``; marks booted workers.

    ``workers`` returns the server's current workers; ``booted`` is called with the index of
    each worker that has beaten (granian's ``respawned_wrks.pop``); ``kill`` sends a signal.
    """

    directory: Path
    timeout: float
    workers: Callable[[], Iterable[Worker]]
    booted: Callable[[int], object]
    kill: Callable[[int, int], None] = os.kill
    killed: list[int] = field(default_factory=list)

    @property
    def interval(self) -> float:
        """The period of the workers' beats and of this watchdog's checks."""
        return interval_for(self.timeout)

    def check(self, now_ns: int | None = None) -> None:
        """Check every worker once: SIGKILL the hung, mark the booted, drop stale stamps."""
        now_ns = time.monotonic_ns() if now_ns is None else now_ns
        live = set()
        for worker in list(self.workers()):
            pid = worker.inner.pid
            if pid is None:
                continue
            live.add(str(pid))
            silence = age(self.directory / str(pid), now_ns)
            if silence is None:
                continue  # still loading the app: not booted, not yet timed
            self.booted(worker.idx)
            if silence > self.timeout and pid not in self.killed:
                log.error(
                    "worker %d sent no heartbeat for %.1f s (TENANTAUTH_WORKER_TIMEOUT=%g): "
                    "killing it; it is replaced",
                    pid,
                    silence,
                    self.timeout,
                )
                self.killed.append(pid)
                with contextlib.suppress(ProcessLookupError):
                    self.kill(pid, signal.SIGKILL)
        self._drop_stale(live)

    def _drop_stale(self, live: set[str]) -> None:
        """Remove the stamps (and other ``<pid>.*`` files) of processes that are no longer
        workers."""
        for path in self.directory.iterdir():
            # A worker's stamp is named by its pid; its other files (granian_balance) too.
            if path.name.partition(".")[0] not in live:
                path.unlink(missing_ok=True)
        self.killed = [pid for pid in self.killed if str(pid) in live]

    def start(self) -> threading.Thread:
        """Check every ``interval`` seconds from a daemon thread; return it."""

        def run() -> None:
            while self.directory.is_dir():
                time.sleep(self.interval)
                try:
                    self.check()
                except OSError:  # the directory is being removed: the server is stopping
                    return
                except Exception:  # say it once, loudly, rather than die silent
                    log.exception("the worker watchdog stopped: hung workers stay hung")
                    return

        thread = threading.Thread(target=run, name="tenantauth-watchdog", daemon=True)
        thread.start()
        return thread

    def remove(self) -> None:
        """Remove the heartbeat directory (the server is stopping)."""
        shutil.rmtree(self.directory, ignore_errors=True)
