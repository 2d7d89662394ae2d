"""Serve a WSGI app under granian with what tenantauth's gunicorn hooks do, for bench/servers.py.

Usage: ``python bench/granian_serve.py [--app MODULE:ATTR] --port P --workers N
--blocking-threads T [--backpressure B]``. A bench tool, not a supported way to run tenantauth
(issue 14 asks whether it should become one): the environment must already name a migrated
database, as ``tenantauth serve`` leaves it before it execs gunicorn.

What ``tenantauth.gunicorn_conf`` does, and what stands in for it here:

- multiprocess metrics directory, prepared before any worker imports prometheus_client:
  the same ``MetricsDirectory.prepare``, before granian starts;
- /metrics on ``TENANTAUTH_METRICS_PORT`` served by the master: the same
  ``exposition.start_server``, from granian's ``on_startup`` hook (main process, before the
  workers are forked); each worker closes its inherited copy of that socket when it loads
  the app (gunicorn's ``post_fork``);
- ``gc.freeze()`` once the app is loaded (``post_worker_init``): in the worker's app loader;
- at worker exit (``worker_exit``), leave the lease registry and write the queued request log
  lines: a multiprocessing finalizer, because granian's workers are ``multiprocessing`` children, which leave through
  ``os._exit`` and never run ``atexit``;
- a dead worker's live gauges dropped (``child_exit``): NOT done; granian has no hook for it
  (the bench kills no worker);
- header limits (``limit_request_*``): granian has no such settings (hyper's own limits and
  ``--http1-buffer-size`` apply); the app's own limits (``tenantauth.api.hygiene``) still do.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import multiprocessing.util
import os
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.server import Server

from tenantauth import settings
from tenantauth.domain import leases
from tenantauth.observability import exposition, logs

#: What gunicorn_conf's graceful_timeout gives a worker to finish after SIGTERM.
KILL_TIMEOUT = 20
_metrics_server: Any = None


def load_app(target: str) -> Any:
    """In a worker, just forked: load ``target`` ("module:attr"), then do what gunicorn's
    post_fork, post_worker_init and worker_exit hooks do; return the WSGI app."""
    if _metrics_server is not None:
        _metrics_server.socket.close()
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr)
    multiprocessing.util.Finalize(None, worker_exit, exitpriority=10)
    gc.freeze()
    return app


def worker_exit() -> None:
    """In a worker, exiting: what gunicorn_conf.worker_exit does."""
    leases.stop_all()
    logs.flush()


def start_metrics() -> None:
    """Main process, listening, before the workers fork: serve /metrics on its own port."""
    global _metrics_server  # noqa: PLW0603 - one server per main process
    port = settings.metrics_port(os.environ)
    if port:
        host = os.environ.get("TENANTAUTH_METRICS_HOST", "127.0.0.1")
        _metrics_server = exposition.start_server(host, port)


def main() -> None:
    """Parse the command line, prepare metrics, serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="tenantauth.wsgi:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--blocking-threads", type=int, required=True)
    parser.add_argument("--backpressure", type=int)
    args = parser.parse_args()
    metrics_dir = None
    if settings.metrics_port(os.environ):
        metrics_dir = exposition.MetricsDirectory.prepare(os.environ)
    server = Server(
        args.app,
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=args.workers,
        blocking_threads=args.blocking_threads,
        backpressure=args.backpressure,
        http=HTTPModes.http1,
        websockets=False,
        respawn_failed_workers=True,
        workers_kill_timeout=KILL_TIMEOUT,
    )
    server.on_startup(start_metrics)
    if metrics_dir is not None:
        server.on_shutdown(metrics_dir.remove)
    server.serve(target_loader=load_app)


if __name__ == "__main__":
    main()
