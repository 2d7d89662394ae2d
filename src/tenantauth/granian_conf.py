"""granian as ``tenantauth serve --server granian`` runs it: what ``gunicorn_conf`` does, again.

``tenantauth serve`` execs ``python -m tenantauth.granian_conf --host H --port P --workers N``
once migrations are checked, as it execs gunicorn otherwise. The gunicorn hooks and what
stands in for them here (docs/performance-servers.md, "What ``--server granian`` would take"):

- multiprocess metrics directory (``on_starting``): prepared before ``Server.serve()``, in the
  main process, before any worker imports prometheus_client;
- /metrics from the main process on its own port (``when_ready``): granian's ``on_startup``
  hook (after bind, before the workers fork); each worker closes its inherited copy of that
  socket in the app loader (``post_fork``);
- ``gc.freeze()`` once the app is loaded (``post_worker_init``): in the app loader;
- leave the lease registry, fold the gathered counts into the metrics and write the queued
  log lines at worker exit (``worker_exit``):
  a multiprocessing finalizer, since granian's workers are ``multiprocessing`` children that
  leave through ``os._exit`` and never run ``atexit``;
- a dead worker's live gauges (``child_exit``): granian has no such hook; the /metrics server
  drops the gauges of pids that no longer run when it is scraped (``exposition``);
- request-line and header limits (``limit_request_*``): granian has none of gunicorn's; the
  app's own (``tenantauth.api.hygiene``) answer 414/431 (401 on the gateway endpoint);
- the access log (``TENANTAUTH_ACCESS_LOG``): granian's, with a ``%(pid)d`` atom added.

- keep-alive connections spread over the workers (granian's accept greedily from the shared
  queue; gunicorn's benchmark runs were never lopsided): ``granian_balance``, in the loader;
- the hung-worker ``timeout`` (``TENANTAUTH_WORKER_TIMEOUT``, 30 s) and replacing every worker
  that dies after booting: ``granian_watchdog`` (a heartbeat thread in each worker, a watchdog
  thread in the main process).
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib
import logging
import multiprocessing.util
import os
import signal
import socket
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.log import DEFAULT_ACCESSLOG_FMT, LOGGING_CONFIG, LogLevels
from granian.net import SocketSpec  # type: ignore[attr-defined]  # re-exported, not listed
from granian.server.mp import MPServer

from tenantauth import granian_watchdog, settings, worker_boot
from tenantauth.domain.verifying import leases
from tenantauth.granian_balance import ConnectionBalancer
from tenantauth.observability import exposition, logs, tally

APP = "tenantauth.wsgi:app"
#: gunicorn_conf's graceful_timeout: what a worker gets to finish its requests after SIGTERM
#: before it is killed (granian's own default waits for ever).
KILL_TIMEOUT = 20
#: Threads per worker running the app. 4: with the lean paths and balanced connections, 4
#: served as many verifications as 8 with a lower p99 (~10 against ~14.5 ms), and more of the
#: exact path and of issuance, which wait on I/O (docs/design.md, "The HTTP server", Threads).
#: granian's own default (256) is far too many.
DEFAULT_BLOCKING_THREADS = 4
BLOCKING_THREADS_ENV = "TENANTAUTH_BLOCKING_THREADS"
#: Connections one worker serves at once (the rest wait in its queue): gunicorn's
#: worker_connections default. granian's own (backlog ÷ workers, 341 with 3 workers) held up
#: S10's 1,000 simultaneous keep-alive connections: its workers' SO_REUSEPORT sockets spread
#: them unevenly, and those past the bound on the busiest worker were never answered.
DEFAULT_BACKPRESSURE = 1000
ACCESS_LOG_FORMAT_ENV = "TENANTAUTH_ACCESS_LOG_FORMAT"
#: granian's access line, and the worker that answered (``WorkerPid``).
DEFAULT_ACCESS_LOG_FORMAT = DEFAULT_ACCESSLOG_FMT + " pid=%(pid)d"
#: Settings holding secrets (or URLs that may carry a password). granian copies the worker's
#: ``os.environ`` into every request's WSGI environ, so the loader deletes them once the app
#: has read them.
SECRET_SETTINGS = tuple(
    settings.PREFIX + name
    for name in ("MASTER_KEY", "MASTER_KEYS_OLD", "ADMIN_TOKEN", "DATABASE_URL", "REDIS_URL")
)
#: CGI request variables granian's scope may leave out (no body: no CONTENT_TYPE), which a
#: process variable of that name would then fill in as if the client had sent it.
_CGI_REQUEST_VARIABLES = ("CONTENT_TYPE", "CONTENT_LENGTH", "AUTH_TYPE", "REMOTE_USER")
_metrics_server: Any = None
#: Set in the main process before the workers fork (they inherit copies): the server, whose
#: stop flag a booting worker reads, and its watchdog, whose directory the workers beat in.
_server: Any = None
_watchdog: granian_watchdog.Watchdog | None = None


def blocking_threads(environ: Mapping[str, str]) -> int:
    """Return ``TENANTAUTH_BLOCKING_THREADS`` (default ``DEFAULT_BLOCKING_THREADS``).

    Raises ``ValueError`` when it is not a whole number from 1 to 256.
    """
    text = environ.get(BLOCKING_THREADS_ENV) or str(DEFAULT_BLOCKING_THREADS)
    value = int(text) if text.strip().isdigit() else 0
    if not 1 <= value <= 256:
        raise ValueError(f"{BLOCKING_THREADS_ENV} must be a whole number from 1 to 256")
    return value


def scrub_environ(environ: MutableMapping[str, str]) -> list[str]:
    """Delete the secret settings, ``HTTP_*`` and CGI request variables from ``environ``;
    return the names deleted (sorted)."""
    doomed = sorted(
        name
        for name in environ
        if name in SECRET_SETTINGS or name.startswith("HTTP_") or name in _CGI_REQUEST_VARIABLES
    )
    for name in doomed:
        del environ[name]
    return doomed


def load_app(target: str) -> Any:
    """In a worker, just forked: load ``target`` ("module:attr"), do what gunicorn's
    post_fork, post_worker_init and worker_exit hooks do, and scrub the secrets from this
    worker's environment; return the WSGI app.

    Raises whatever importing ``target`` raises (granian then stops the server).
    """
    stop_on_signal_while_booting()
    if _metrics_server is not None:
        _metrics_server.socket.close()
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr)
    # granian builds the environ it copies into every request once this returns; the main
    # process keeps its own environment, so a respawned worker still reads the settings.
    scrub_environ(os.environ)
    multiprocessing.util.Finalize(None, worker_exit, exitpriority=10)
    gc.freeze()  # see gunicorn_conf.post_worker_init
    if _watchdog is not None:  # booted: from now on the watchdog times this worker
        granian_watchdog.start_heartbeat(_watchdog.directory, _watchdog.interval)
        if _server is not None and _server.workers > 1:
            balancer = ConnectionBalancer(app, _watchdog.directory, _server.bind_port)
            balancer.start()
            app = balancer
    return app


def stop_on_signal_while_booting() -> None:
    """In a worker, first thing: exit at once on SIGTERM or SIGINT until granian installs the
    worker's own handler (right after the app is loaded); exit now if one came already.

    The inherited handler only flags the (copied) server object, so that flag is what tells
    a stop came before (``worker_boot``). Without this a server stopped right after it
    started took 21 s (KILL_TIMEOUT).
    """
    worker_boot.exit_on_stop_while_booting(
        (signal.SIGTERM, signal.SIGINT),
        lambda: _server is not None and bool(_server.interrupt_signal),
    )


def worker_exit() -> None:
    """In a worker, exiting: what ``gunicorn_conf.worker_exit`` does."""
    leases.stop_all()
    tally.fold_all()
    logs.flush()


def start_metrics() -> None:
    """Main process, listening, before the workers fork: serve /metrics on its own port.

    Raises ``OSError`` when the port cannot be bound (``tenantauth serve`` checks it first).
    """
    global _metrics_server  # noqa: PLW0603 - one server per main process
    port = settings.metrics_port(os.environ)
    if port:
        host = os.environ.get("TENANTAUTH_METRICS_HOST", "127.0.0.1")
        _metrics_server = exposition.start_server(host, port)


class WorkerPid(logging.Filter):
    """Adds ``pid`` (this worker's) to granian's access-log record, for ``%(pid)d``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Return True (keep the record), its arguments extended with ``pid``."""
        if isinstance(record.args, dict):
            record.args = {**record.args, "pid": os.getpid()}
        return True


def log_config(access_log: str | None) -> dict[str, Any]:
    """Return granian's logging dictConfig with the access log written to ``access_log``
    (a path, or "-" for stdout) through ``WorkerPid``; granian's own when None."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    if access_log:
        config["filters"] = {"pid": {"()": "tenantauth.granian_conf.WorkerPid"}}
        handler: dict[str, Any] = {"formatter": "access", "filters": ["pid"]}
        if access_log == "-":
            handler |= {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"}
        else:
            handler |= {"class": "logging.FileHandler", "filename": access_log, "delay": True}
        config["handlers"]["access"] = handler
    return config


class SharedSocketServer(MPServer):
    """granian's process server with one listening socket shared by every worker.

    On Linux granian gives each worker a socket of its own (``SO_REUSEPORT``): the kernel then
    hands a stopped or hung worker its share of new connections, which nobody answers (fault
    scenario M1 on granian). Here the main process binds one socket and the workers inherit
    it (the path granian takes on other systems), so they share one accept queue, as
    gunicorn's workers do: a worker that stops accepting leaves the queue to the others
    (tests/e2e/test_servers_e2e.py). Needs the ``fork`` start method, Linux's default up to
    Python 3.13 (the image runs 3.11); under another, granian's own sockets are kept.
    """

    def _init_shared_socket(self) -> None:
        if multiprocessing.get_start_method() != "fork":  # e.g. Python 3.14's forkserver
            super()._init_shared_socket()  # type: ignore[no-untyped-call]
            return
        holder = SocketSpec(self.bind_addr, self.bind_port, self.backlog).build()
        self._ssp = None
        self._shd = holder  # type: ignore[assignment]  # granian annotates it as None
        self._sfd = holder.get_fd()
        sock = socket.socket(fileno=self._sfd)
        sock.set_inheritable(True)
        self._sso = sock


def build_server(
    host: str,
    port: int,
    workers: int,
    *,
    threads: int,
    app: str = APP,
    backpressure: int | None = None,
) -> Any:
    """Return a granian ``Server`` for ``app`` with the metrics hooks registered.

    Reads ``TENANTAUTH_ACCESS_LOG``, ``TENANTAUTH_ACCESS_LOG_FORMAT``, ``TENANTAUTH_LOG_LEVEL``,
    ``TENANTAUTH_METRICS_PORT`` and ``TENANTAUTH_WORKER_TIMEOUT``; prepares the metrics
    directory when metrics are on, and the heartbeat directory.
    """
    access_log = os.environ.get("TENANTAUTH_ACCESS_LOG") or None
    level = os.environ.get("TENANTAUTH_LOG_LEVEL", "info").lower()
    server = SharedSocketServer(
        app,
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        backpressure=backpressure or DEFAULT_BACKPRESSURE,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels(level) if level in LogLevels.__members__ else LogLevels.info,
        log_dictconfig=log_config(access_log),
        log_access=access_log is not None,
        log_access_format=os.environ.get(ACCESS_LOG_FORMAT_ENV) or DEFAULT_ACCESS_LOG_FORMAT,
        # One dead worker otherwise stops the whole server (S4: a worker SIGKILLed).
        respawn_failed_workers=True,
        workers_kill_timeout=KILL_TIMEOUT,
    )
    global _server, _watchdog  # noqa: PLW0603 - one server per main process; workers inherit
    _server = server
    server.on_startup(start_metrics)
    _watchdog = watch_workers(server, settings.worker_timeout(os.environ))
    if settings.metrics_port(os.environ):
        metrics_dir = exposition.MetricsDirectory.prepare(os.environ)
        server.on_shutdown(metrics_dir.remove)
    return server


def watch_workers(server: Any, timeout: int) -> granian_watchdog.Watchdog:
    """Give ``server`` a hung-worker watchdog with ``timeout`` (started with the server,
    removed at shutdown); return it (its workers beat in its directory once booted)."""
    watchdog = granian_watchdog.Watchdog(
        granian_watchdog.make_directory(),
        timeout,
        workers=lambda: server.wrks,
        # granian's crash-loop rule: a worker dying within 5.5 s of its respawn stops the
        # server. A worker that has booted is taken out of it (always replaced).
        booted=lambda idx: server.respawned_wrks.pop(idx, None),
    )
    server.on_startup(watchdog.start)
    server.on_shutdown(watchdog.remove)
    return watchdog


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="tenantauth under granian")
    parser.add_argument("--app", default=APP)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--blocking-threads", type=int)
    parser.add_argument("--backpressure", type=int)
    args = parser.parse_args(argv)
    threads = args.blocking_threads or blocking_threads(os.environ)
    server = build_server(
        args.host,
        args.port,
        args.workers,
        threads=threads,
        app=args.app,
        backpressure=args.backpressure,
    )
    server.serve(target_loader=load_app)


if __name__ == "__main__":
    main()
