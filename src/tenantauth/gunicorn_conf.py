"""gunicorn settings used by ``tenantauth serve`` (``-c python:tenantauth.gunicorn_conf``).

Bind address and worker count come from the command line. Connection pools open lazily in
each worker after fork (never in the master), so no socket is shared between processes.
"""

import gc
import os
import queue
import signal
import sys
from typing import Any

from tenantauth import settings, worker_boot
from tenantauth.domain.verifying import leases
from tenantauth.observability import exposition, logs, tally

worker_class = "gthread"
# Threads let a worker keep serving while one request waits on a slow dependency.
threads = int(os.environ.get("TENANTAUTH_THREADS", "4"))
# Seconds without a heartbeat before a worker is killed and replaced (default 30).
timeout = settings.worker_timeout(os.environ)
# SIGTERM (rolling restarts): workers stop accepting, answer every request already accepted,
# keep kept-alive connections open 2 s more (a request arriving on one gets "Connection:
# close"), then exit; whatever still runs after graceful_timeout is killed. 20 s because:
# - it must outlast the slowest request we can be in: a pool wait plus a statement, each
#   bounded by TENANTAUTH_DB_TIMEOUT (default 5 s), about 10 s;
# - it must end before Kubernetes' SIGKILL: 5 s preStop sleep + 20 s < 30 s
#   terminationGracePeriodSeconds (k8s/base/deployment.yaml), leaving 5 s of margin.
# Connections a worker has not accepted yet when it stops are reset: a load balancer must
# stop routing to the pod first (the preStop sleep) or retry. Checked by the fault suite,
# tests/faults/test_race_faults.py (scenario 13).
graceful_timeout = 20
keepalive = 5
# Heartbeat files on tmpfs: works with a read-only root filesystem and never blocks on disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: PTH112, S108
accesslog = os.environ.get("TENANTAUTH_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("TENANTAUTH_LOG_LEVEL", "info").lower()
# Reject oversized request lines and headers before Flask sees them (414 and 431 here). The
# header limits are twice the app's own (tenantauth.api.hygiene): gunicorn bounds memory, the
# app decides the answer between them, so the gateway endpoint GET /v1/verify can answer its
# uniform 401 (a 431 becomes a 500 behind nginx auth_request) — docs/protecting-services.md.
limit_request_line = settings.MAX_REQUEST_LINE_BYTES
limit_request_fields = 2 * settings.MAX_HEADER_FIELDS
limit_request_field_size = 2 * settings.MAX_HEADER_FIELD_BYTES
# gunicorn 27's control socket lives under $HOME, which is read-only in our containers, and
# nothing here uses it.
control_socket_disable = True


# Metrics (docs/design.md, "Metrics"): served by the master on their own port, from the
# files the workers write in the multiprocess directory.
METRICS_PORT = settings.metrics_port(os.environ)
_metrics_dir: exposition.MetricsDirectory | None = None
_metrics_server: Any = None


def on_starting(server: Any) -> None:
    """Master, before anything is loaded or forked: the multiprocess directory must exist,
    empty, and be named in the environment before any worker imports prometheus_client."""
    global _metrics_dir  # noqa: PLW0603 - one directory per master process
    if METRICS_PORT:
        _metrics_dir = exposition.MetricsDirectory.prepare(os.environ)


def when_ready(server: Any) -> None:
    """Master, once listening: serve /metrics on its own port. A port that cannot be bound
    stops the server with a message saying which (``tenantauth serve`` checks it first)."""
    global _metrics_server  # noqa: PLW0603 - one server per master process
    if not METRICS_PORT:
        return
    host = os.environ.get("TENANTAUTH_METRICS_HOST") or _bind_host(server.cfg.bind)
    try:
        _metrics_server = exposition.start_server(host, METRICS_PORT)
    except OSError as exc:
        server.log.error(  # noqa: TRY400 - the message says it all; no traceback
            "cannot serve metrics on %s:%d (%s): set TENANTAUTH_METRICS_PORT to a free port, "
            "or 0 to turn metrics off",
            host,
            METRICS_PORT,
            exc.strerror,
        )
        sys.exit(1)
    server.log.info("metrics on http://%s:%d/metrics", host, METRICS_PORT)


#: What stops a worker: SIGTERM (graceful: the master's stop, a reload, fewer workers),
#: SIGQUIT (quick: the master's SIGINT or SIGQUIT) and SIGINT (a terminal's Ctrl-C).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGQUIT, signal.SIGINT})


def post_fork(server: Any, worker: Any) -> None:
    """Worker, just forked: exit at once on a stop signal until gunicorn installs the
    worker's own handlers; close its inherited copy of the master's metrics socket, so the
    port is released as soon as the master exits."""
    stop_on_signal_while_booting(server)
    if _metrics_server is not None:
        _metrics_server.socket.close()


def stop_on_signal_while_booting(server: Any) -> None:
    """In a worker, first thing after the fork: exit at once on ``STOP_SIGNALS`` until
    gunicorn's ``init_signals`` replaces the handlers (before the app is loaded); exit now if
    one came already.

    From the fork to ``init_signals`` a worker runs the master's handler, which only queues the
    signal on the master's ``SIG_QUEUE`` — the worker's own copy, which nobody reads; so that
    copy is what tells a stop came before (``worker_boot``, as for granian).
    """
    worker_boot.exit_on_stop_while_booting(
        STOP_SIGNALS, lambda: stop_queued(getattr(server, "SIG_QUEUE", None))
    )


def stop_queued(signals: "queue.SimpleQueue[Any] | None") -> bool:
    """Empty ``signals`` (the worker's copy of the master's queue); return whether it held
    one of ``STOP_SIGNALS``."""
    found = False
    while signals is not None:
        try:
            found = signals.get_nowait() in STOP_SIGNALS or found
        except queue.Empty:
            break
    return found


def child_exit(server: Any, worker: Any) -> None:
    """Master, a worker has exited: its live gauges stop counting (totals stay)."""
    if METRICS_PORT:
        exposition.worker_gone(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    """Worker, exiting: leave the lease registry (no change waits out this worker's lease),
    then add the counts still gathered to the metrics and write out the queued log lines."""
    leases.stop_all()
    tally.fold_all()
    logs.flush()


def on_exit(server: Any) -> None:
    """Master, exiting: remove the metrics directory if it was ours."""
    if _metrics_dir is not None:
        _metrics_dir.remove()


def _bind_host(binds: list[str]) -> str:
    """The host of gunicorn's first bind address ("127.0.0.1:8000" -> "127.0.0.1")."""
    host = binds[0].rsplit(":", 1)[0] if binds else "127.0.0.1"
    return host.strip("[]") or "127.0.0.1"


def post_worker_init(worker: object) -> None:
    """Once the app is loaded in a worker, move everything it allocated so far (Flask,
    marshmallow, the OpenAPI spec: hundreds of thousands of objects that live as long as the
    process) out of the garbage collector's reach. Full collections then scan only what was
    allocated since: they took 37-45 ms per worker before, each one stalling every request of
    that worker (the fault suite's S11 saw them as its p99), and a few ms after
    (docs/design.md, "Garbage collection"). Nothing is leaked: frozen objects are still freed
    by reference counting; only cycles among them are never collected, and they live for the
    process anyway."""
    gc.freeze()
