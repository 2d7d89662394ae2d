"""A PostgreSQL that stops answering mid-conversation cannot hold a request forever.

``statement_timeout`` is the server's; when the server (or the path to it) goes silent while
TCP still acknowledges, only a client-side bound ends the wait (storage/postgres.py,
``BoundedConnection``). The silence is made by the fault suite's proxy, in front of the run's
own database (the shared server itself is never touched).
"""

from __future__ import annotations

import threading
import time

import pytest

from tenantauth.errors import StorageUnavailableError
from tenantauth.storage import postgres
from tenantauth.storage.postgres import PostgresStorage
from tests.faults.conftest import proxied_url
from tests.faults.harness import TcpProxy

#: Far beyond the bound under test (1 s statement timeout + 1 s), far below "forever".
GIVE_UP = 30.0
RECOVER = 20.0


def outcome_of(call: object) -> list[object]:
    """Run ``call`` in a thread; return [result or exception], or [] if it never finished."""
    out: list[object] = []

    def run() -> None:
        try:
            out.append(call())  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - handed to the test
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GIVE_UP)
    return out


def test_a_silent_database_is_an_error_not_a_hang(pg_url: str, proxy: TcpProxy) -> None:
    """A read on a connection that went silent ends in StorageUnavailableError (503), and the
    storage works again once the database answers, without a restart."""
    storage = PostgresStorage(
        proxied_url(pg_url, proxy.port), timeout=1.0, statement_timeout_ms=1000
    )
    try:
        storage.migrate()  # (a no-op when this run's database is migrated already)
        assert storage.load_key_record("acme") is None  # a live connection, through the proxy
        proxy.blackhole()
        out = outcome_of(lambda: storage.load_key_record("acme"))
        assert out, f"the read was still waiting after {GIVE_UP} s"
        assert isinstance(out[0], StorageUnavailableError), out
        proxy.restore()
        # The pool replaces the closed connection by itself (with its reconnect backoff).
        until_recovered(storage)
    finally:
        storage.close()


def test_a_connection_broken_while_idle_is_replaced_unseen_once_it_is_not_fresh(
    pg_url: str, proxy: TcpProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool checks a connection at checkout only when it sat idle for ``FRESH_SECONDS``
    or longer (storage/postgres.py, ``check_unless_fresh``). Broken after that long, it is
    replaced before the read, which succeeds; broken while fresh, it fails the one read that
    draws it (503 upstream, never a wrong answer), and the next read gets a new one."""
    monkeypatch.setattr(postgres, "FRESH_SECONDS", 0.5)
    storage = PostgresStorage(proxied_url(pg_url, proxy.port), min_size=1, max_size=1)
    try:
        storage.migrate()
        assert storage.load_key_record("acme") is None
        proxy.cut()  # the pooled connection is closed under the pool's feet
        proxy.restore()
        time.sleep(0.6)
        assert storage.load_key_record("acme") is None  # checked and replaced: unseen
        proxy.cut()
        proxy.restore()
        with pytest.raises(StorageUnavailableError):  # fresh: not checked
            storage.load_key_record("acme")
        until_recovered(storage)
    finally:
        storage.close()


def until_recovered(storage: PostgresStorage) -> None:
    """Read until a read answers again (at most ``RECOVER`` seconds)."""
    deadline = time.monotonic() + RECOVER
    while (out := outcome_of(lambda: storage.load_key_record("acme"))) != [None]:
        assert out and time.monotonic() < deadline, f"no recovery within {RECOVER} s: {out}"
        time.sleep(0.2)
