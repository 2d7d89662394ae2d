"""A worker's first moments after the fork, under either server (``gunicorn_conf``,
``granian_conf``).

- Until its server installs the worker's own signal handlers, it runs the main process's
  handler, which only records the signal in the worker's copy of the main process's state —
  so a stop sent then was lost and the worker killed only after the drain timeout (20 s;
  tests/e2e/test_servers_e2e.py, a server stopped as its workers boot).
- It finds the app's modules already imported (``preload_modules``, in the main process
  before the fork) and only builds the app.
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
from collections.abc import Callable, Iterable
from typing import Any

#: The module whose imports make up most of a worker's boot (Flask, flask-smorest,
#: marshmallow, psycopg, redis-py, argon2, cryptography, prometheus_client): imported once in
#: the main process, it is in every forked worker's memory, shared until written. Importing
#: it builds nothing (no app, connection, thread or secret): ``create_app`` does, in each
#: worker (docs/design.md, "Worker boot").
PRELOADED = "tenantauth.app"


def preload_modules() -> None:
    """Import ``PRELOADED`` in this (main) process, so that workers forked from it start
    without importing it again, and freeze what the import allocated. Call it once the
    environment the imports read is final: the metrics directory (prometheus_client picks its
    multiprocess mode on import).

    Raises whatever the import raises (the server then does not start).
    """
    importlib.import_module(PRELOADED)
    # The modules live as long as the process: out of the collector's reach, a worker's
    # collections never write to their pages, which stay shared with the main process
    # (the gc module's documentation, on freeze before fork).
    gc.freeze()


def exit_on_stop_while_booting(signals: Iterable[int], stopped_already: Callable[[], bool]) -> None:
    """Make each of ``signals`` end this worker at once (status 0) until its server replaces
    the handlers; end it now if ``stopped_already()`` (what the inherited handler recorded)
    says a stop came before.

    Race-free by its order: a signal handled before the new handlers are in place was
    recorded, and is read after; one handled after runs the new handler. A booting worker
    holds no request, so exiting loses nothing, and its server replaces it unless stopping.
    """
    for signum in signals:
        signal.signal(signum, _exit_now)
    if stopped_already():
        _exit_now(signal.SIGTERM, None)


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(0)
