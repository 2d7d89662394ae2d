"""Serving /metrics from the gunicorn master, across worker processes.

prometheus_client's multiprocess mode: each worker writes its values to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR``; the master reads them all when scraped (``MultiProcessCollector``)
and, when a worker exits, marks it dead so its live gauges stop counting (counters and
histograms keep its totals, so nothing goes backwards). The directory is on tmpfs
(``/dev/shm``) where there is one: no disk I/O on the request path, and a read-only root
filesystem is fine. It is emptied when the master starts (values from an earlier run would
otherwise be summed in) and removed when it exits, unless the operator chose it.

The metrics port is separate from the API port, so the public ingress (which routes to the
API port only) never exposes /metrics (docs/design.md, "Metrics").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: prometheus_client reads this when it is imported: set it before any worker imports it.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SHM = Path("/dev/shm")  # noqa: S108 - tmpfs, per container; the files are counters only


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
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def worker_gone(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the totals)."""
    from prometheus_client import multiprocess  # noqa: PLC0415

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
