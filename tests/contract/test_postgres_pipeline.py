"""PostgreSQL transactions run in pipeline mode (storage/postgres.py, ``pipelined_transaction``).

Under load every wait for the database is also a wait for the GIL, so a change's latency
follows how many times it waits (docs/design.md, "Changes under load"). These tests count
the round trips of the transactions a change runs, through the fault suite's relay in front
of the run's own database, and check that pipelining changes nothing else: statements run in
order, a failure anywhere rolls the whole transaction back, and the connection comes back
idle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import pq

from tenantauth.domain.admin.admin_models import AuditEntry, AuditEvent
from tenantauth.errors import ConflictError
from tenantauth.storage.postgres import PostgresStorage, PostgresTx, pipelined_transaction
from tests.contract.factories import tenant
from tests.faults.conftest import proxied_url
from tests.faults.harness import TcpProxy

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def acme(pg_url: str) -> None:
    """The run's database, migrated and holding tenant ``acme``."""
    storage = PostgresStorage(pg_url)
    storage.migrate()
    with storage.transaction() as tx:
        tx.insert_tenant(tenant("acme"))
    storage.close()


@pytest.fixture
def conn(proxy: TcpProxy, pg_url: str) -> Iterator[psycopg.Connection[object]]:
    """A connection as the pool makes them (autocommit), through ``proxy``."""
    with psycopg.connect(proxied_url(pg_url, proxy.port), autocommit=True) as connection:
        connection.execute("SELECT 1")  # connected and settled before anything is counted
        yield connection


def round_trips(proxy: TcpProxy, work: Callable[[], None]) -> int:
    """Run ``work``; return how many times it waited for the server."""
    before = proxy.turns
    work()
    return proxy.turns - before


def event_entry(seq: int, prev: bytes) -> AuditEntry:
    event = AuditEvent("admin", "acme", "tenant.rotate", None, "req-1", "success")
    return AuditEntry(seq, NOW, event, prev, bytes([seq]) * 32)


def test_a_change_waits_three_times_and_an_audit_append_twice(
    proxy: TcpProxy, conn: psycopg.Connection[object]
) -> None:
    """Without pipelining: 3, 5 and 5 round trips (one per statement, BEGIN and COMMIT
    included); with it, BEGIN travels with the first read and COMMIT with the last writes."""

    def read() -> None:
        with pipelined_transaction(conn):
            assert PostgresTx(conn).get_tenant("acme") is not None

    def change() -> None:  # apply_change's statements: lock, read, update, commit
        with pipelined_transaction(conn):
            tx = PostgresTx(conn)
            current = tx.get_tenant("acme", for_update=True)
            assert current is not None
            tx.update_tenant(replace(current, name="Renamed"))

    def append() -> None:  # audit.record's statements: lock, head, insert, commit
        with pipelined_transaction(conn):
            tx = PostgresTx(conn)
            head = tx.audit.lock_head()
            seq, prev = (head.seq + 1, head.entry_hash) if head else (1, bytes(32))
            tx.audit.append(event_entry(seq, prev))

    assert [round_trips(proxy, w) for w in (read, change, append)] == [2, 3, 2]
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    with pipelined_transaction(conn):
        tx = PostgresTx(conn)
        renamed, head = tx.get_tenant("acme"), tx.audit.lock_head()
    assert renamed is not None and renamed.name == "Renamed"
    assert head is not None and head.seq == 1


def test_an_error_in_the_block_rolls_back_what_was_queued(
    conn: psycopg.Connection[object],
) -> None:
    """Writes queued but not yet answered are rolled back when the block raises."""
    with pytest.raises(RuntimeError), pipelined_transaction(conn):
        tx = PostgresTx(conn)
        current = tx.get_tenant("acme", for_update=True)
        assert current is not None
        tx.audit.append(event_entry(1, bytes(32)))  # queued, never answered
        raise RuntimeError("the domain refused")
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    with pipelined_transaction(conn):
        assert PostgresTx(conn).audit.lock_head() is None


def test_a_failed_queued_write_fails_the_commit_and_nothing_is_kept(
    conn: psycopg.Connection[object],
) -> None:
    """A write whose error arrives only with the COMMIT's answer: the server skipped the
    COMMIT, so nothing of the transaction is kept, and the error is raised."""
    with pipelined_transaction(conn):
        PostgresTx(conn).audit.append(event_entry(1, bytes(32)))
    with pytest.raises(psycopg.errors.UniqueViolation), pipelined_transaction(conn):
        tx = PostgresTx(conn)
        current = tx.get_tenant("acme", for_update=True)
        assert current is not None
        tx.update_tenant(replace(current, name="Lost"))
        tx.audit.append(event_entry(1, bytes(32)))  # seq 1 is taken
    assert conn.info.transaction_status == pq.TransactionStatus.IDLE
    with pipelined_transaction(conn):
        kept = PostgresTx(conn).get_tenant("acme")
    assert kept is not None and kept.name != "Lost"


def test_the_storage_maps_a_conflict_found_at_commit(pg_url: str, proxy: TcpProxy) -> None:
    """Through ``PostgresStorage.transaction``: the UniqueViolation above is a
    ``ConflictError``, and the connection goes back to the pool usable."""
    storage = PostgresStorage(pg_url, max_size=1)
    try:
        with storage.transaction() as tx:
            tx.audit.append(event_entry(1, bytes(32)))
        with pytest.raises(ConflictError), storage.transaction() as tx:
            tx.audit.append(event_entry(1, bytes(32)))
        with storage.transaction() as tx:
            assert tx.get_tenant("acme") is not None
    finally:
        storage.close()


def test_the_row_lock_is_held_before_the_read_runs(
    pg_url: str, conn: psycopg.Connection[object]
) -> None:
    """The lock and the read go out together, yet the read runs only once the lock is
    granted, so it sees the change that held the lock (``PostgresTx.get_tenant``)."""
    holder = psycopg.connect(pg_url, autocommit=True)
    holder.execute("BEGIN")
    holder.execute("SELECT 1 FROM tenants WHERE id = 'acme' FOR UPDATE")
    holder.execute("UPDATE tenants SET name = 'Committed while we waited' WHERE id = 'acme'")
    seen: list[str] = []

    def lock_and_read() -> None:
        with pipelined_transaction(conn):
            current = PostgresTx(conn).get_tenant("acme", for_update=True)
            seen.append(current.name if current else "")

    waiter = threading.Thread(target=lock_and_read)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive(), "the read did not wait for the row lock"
    holder.execute("COMMIT")
    holder.close()
    waiter.join(10)
    assert seen == ["Committed while we waited"]
