"""A worker's first moments after the fork, under either server (``gunicorn_conf``,
``granian_conf``): until its server installs the worker's own signal handlers, it runs the
main process's handler, which only records the signal in the worker's copy of the main
process's state — so a stop sent then was lost and the worker killed only after the drain
timeout (20 s; tests/e2e/test_servers_e2e.py, a server stopped as its workers boot).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterable
from typing import Any


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
