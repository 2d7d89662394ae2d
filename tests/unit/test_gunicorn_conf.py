"""The gunicorn settings ``tenantauth serve`` uses (src/tenantauth/gunicorn_conf.py)."""

from __future__ import annotations

import gc
import os
import queue
import signal
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from tenantauth import gunicorn_conf


def test_a_worker_freezes_what_the_app_allocated() -> None:
    """After the app is loaded, a worker moves its objects to the permanent generation, so
    full collections no longer scan them (they stalled requests for ~40 ms; see
    docs/design.md, "Garbage collection")."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        gunicorn_conf.post_worker_init(object())
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def _fork(body: Callable[[], None]) -> int:
    """Run ``body`` in a forked child that then sleeps 30 s; return the child's pid."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            body()
            time.sleep(30)
        finally:
            os._exit(3)
    return pid


def _exit_status(pid: int, timeout: float = 10.0) -> int:
    """Wait for ``pid``; return its exit code, or minus the signal that killed it. Kills it
    and fails when it has not exited after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"the child {pid} did not exit within {timeout} s")


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGQUIT, signal.SIGINT], ids=lambda s: signal.Signals(s).name
)
def test_a_worker_that_was_sent_a_stop_before_its_handlers_exits_at_once(signum: int) -> None:
    """A stop signal the master's handler queued in the just-forked worker (its own copy of
    ``SIG_QUEUE``, which nobody reads) makes the worker exit as soon as ``post_fork`` runs."""
    queued: queue.SimpleQueue[int] = queue.SimpleQueue()
    for sig in (signal.SIGCHLD, signum, signal.SIGWINCH):
        queued.put(sig)
    pid = _fork(lambda: gunicorn_conf.post_fork(SimpleNamespace(SIG_QUEUE=queued), None))
    assert _exit_status(pid, timeout=5) == 0


def test_a_worker_with_no_stop_queued_boots_on() -> None:
    """Other signals queued (a child's exit, a window change) do not stop a booting worker."""
    queued: queue.SimpleQueue[int] = queue.SimpleQueue()
    queued.put(signal.SIGCHLD)
    assert not gunicorn_conf.stop_queued(queued)
    assert not gunicorn_conf.stop_queued(queue.SimpleQueue())
    assert not gunicorn_conf.stop_queued(None)
    queued.put(signal.SIGTERM)
    assert gunicorn_conf.stop_queued(queued)
    assert not gunicorn_conf.stop_queued(queued), "the queue is emptied"


@pytest.mark.parametrize("install", [True, False], ids=["post_fork", "without"])
def test_a_stop_signal_while_booting_exits_the_worker_at_once(install: bool) -> None:
    """After ``post_fork`` a stop signal ends the worker at once with status 0; without it the
    signal would go to the handler the master left (here: the default, death by SIGTERM),
    which under gunicorn queued it and lost it."""
    ready_r, ready_w = os.pipe()

    def boot() -> None:
        if install:
            gunicorn_conf.post_fork(SimpleNamespace(SIG_QUEUE=queue.SimpleQueue()), None)
        os.write(ready_w, b"1")

    pid = _fork(boot)
    try:
        assert os.read(ready_r, 1) == b"1"
    finally:
        os.close(ready_r)
        os.close(ready_w)
    os.kill(pid, signal.SIGTERM)
    assert _exit_status(pid) == (0 if install else -signal.SIGTERM)
