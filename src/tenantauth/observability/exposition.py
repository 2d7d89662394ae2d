"""Serving /metrics from the gunicorn master, across worker processes.

prometheus_client's multiprocess mode: each worker writes its values to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR``; the master reads them all when scraped (``MultiProcessCollector``)
and marks a worker that exited dead, so its live gauges stop counting (counters and
histograms keep its totals, so nothing goes backwards): at once through gunicorn's
``child_exit``, and whatever the server at the next scrape, which drops the live gauges of
every pid that no longer runs (granian has no worker-exit hook). The directory is on tmpfs
(``/dev/shm``) where there is one: no disk I/O on the request path, and a read-only root
filesystem is fine. It is emptied when the master starts (values from an earlier run would
otherwise be summed in) and removed when it exits, unless the operator chose it.

The metrics port is separate from the API port, so the public ingress (which routes to the
API port only) never exposes /metrics (docs/design.md, "Metrics").
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: prometheus_client reads this when it is imported: set it before any worker imports it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SHM = Path("/dev/shm")  # noqa: S108 - tmpfs, per container; the files are counters only
#: prometheus_client's file of one process's live gauges: ``gauge_livesum_<pid>.db`` ...
_LIVE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


@dataclass
class MetricsDirectory:
    """The multiprocess directory of one gunicorn master; ``owned`` if we created it."""

    path: Path
    owned: bool

    @classmethod
    def prepare(cls, environ: dict[str, str] | os._Environ[str]) -> MetricsDirectory:
        """Empty the directory named by ``PROMETHEUS_MULTIPROC_DIR``, or create a private one
        on tmpfs and name it there; return it. Call before prometheus_client is imported."""
        given = environ.get(MULTIPROC_ENV)
        if given:
            path = Path(given)
            path.mkdir(parents=True, exist_ok=True)
            for stale in path.glob("*.db"):
                stale.unlink()
            return cls(path, owned=False)
        parent = _SHM if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None
        path = Path(tempfile.mkdtemp(prefix="tenantauth-metrics-", dir=parent))
        environ[MULTIPROC_ENV] = str(path)
        return cls(path, owned=True)

    def remove(self) -> None:
        """Delete the directory if we created it."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)


def start_server(host: str, port: int) -> Any:
    """Serve the workers' summed metrics at ``http://host:port/metrics`` from a daemon thread
    of this (master) process; return the server, whose socket workers must close after fork.

    Raises ``OSError`` when the address cannot be bound.
    """
    from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415
    from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

    registry = CollectorRegistry()
    registry.register(LiveOnlyCollector(MultiProcessCollector(None)))  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


class LiveOnlyCollector:
    """The multiprocess collector, after dropping the live gauges of pids that exited."""

    def __init__(self, inner: Any) -> None:
        """Wrap ``inner``, a ``MultiProcessCollector`` not registered anywhere."""
        self._inner = inner

    def collect(self) -> Iterable[Any]:
        """Return the summed metrics of every process, live gauges of running ones only."""
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            sweep_dead_workers(Path(directory))
        return self._inner.collect()  # type: ignore[no-any-return]


def sweep_dead_workers(directory: Path) -> list[int]:
    """Drop the live gauges of every process in ``directory`` that no longer runs; return
    their pids (sorted). A pid reused by a new process since counts as running until that
    one exits (at most a stale gauge, as before this sweep)."""
    pids = {
        int(m[1]) for f in directory.glob("gauge_live*.db") if (m := _LIVE_FILE.fullmatch(f.name))
    }
    dead = sorted(pid for pid in pids if not _running(pid))
    if dead:
        from prometheus_client import multiprocess  # noqa: PLC0415

        for pid in dead:
            multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
    return dead


def _running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it exited just now
        return not Path("/proc").is_dir()
    return stat[stat.rindex(")") + 2] != "Z"


def worker_gone(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
