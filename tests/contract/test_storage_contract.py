"""The Storage contract (domain/ports.py), checked against every adapter."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tenantauth.domain.models import KeyRecord, KeyState, SealedSecret, TenantKey, TenantStatus
from tenantauth.errors import ConflictError, NotFoundError, StorageUnavailableError
from tenantauth.storage import MigratableStorage, open_storage
from tests.contract.factories import KEYRING, WHEN, tenant


def test_insert_then_get_round_trips_every_field(storage: MigratableStorage) -> None:
    """A stored tenant reads back equal, secret and tz-aware timestamps included."""
    row = tenant(rotated_at=WHEN + timedelta(seconds=5))
    with storage.transaction() as tx:
        tx.insert_tenant(row)
    with storage.transaction() as tx:
        assert tx.get_tenant("acme") == row
    assert KEYRING.open("acme", row.sealed_secret) == bytes(32)  # type: ignore[arg-type]


def test_get_unknown_returns_none(storage: MigratableStorage) -> None:
    """Unknown ids are None, not errors."""
    with storage.transaction() as tx:
        assert tx.get_tenant("nobody") is None
    assert storage.load_key_record("nobody") is None


def test_duplicate_insert_is_a_conflict(storage: MigratableStorage) -> None:
    """Inserting an existing id raises ConflictError and keeps the first row."""
    with storage.transaction() as tx:
        tx.insert_tenant(tenant())
    with pytest.raises(ConflictError), storage.transaction() as tx:
        tx.insert_tenant(tenant(name="Other"))
    with storage.transaction() as tx:
        assert tx.get_tenant("acme").name == "Acme"  # type: ignore[union-attr]


def test_update_overwrites_and_missing_is_not_found(storage: MigratableStorage) -> None:
    """update_tenant replaces every column; a missing row raises NotFoundError."""
    with storage.transaction() as tx:
        tx.insert_tenant(tenant())
    changed = tenant(name="New", status=TenantStatus.SUSPENDED, generation=7, key_version=3)
    with storage.transaction() as tx:
        tx.update_tenant(changed)
    with storage.transaction() as tx:
        assert tx.get_tenant("acme") == changed
    with pytest.raises(NotFoundError), storage.transaction() as tx:
        tx.update_tenant(tenant("ghost"))


def test_exception_rolls_back(storage: MigratableStorage) -> None:
    """An exception inside transaction() leaves nothing behind."""
    with pytest.raises(RuntimeError), storage.transaction() as tx:
        tx.insert_tenant(tenant())
        raise RuntimeError
    with storage.transaction() as tx:
        assert tx.get_tenant("acme") is None


def test_tombstones_are_hidden_from_lists_but_kept_for_keys(storage: MigratableStorage) -> None:
    """Deleted rows keep their generation for the verifier but leave listings."""
    tomb = tenant(status=TenantStatus.DELETED, sealed_secret=None, generation=9)
    with storage.transaction() as tx:
        tx.insert_tenant(tomb)
        tx.insert_tenant(tenant("beta"))
        assert [t.id for t in tx.list_tenants(None, 10)] == ["beta"]
    assert storage.load_key_record("acme") == KeyRecord("acme", 9, TenantStatus.DELETED, None)


def test_list_is_ordered_and_paged(storage: MigratableStorage) -> None:
    """list_tenants returns ids above `after`, ascending, at most `limit`."""
    with storage.transaction() as tx:
        for tid in ("c-3", "a-1", "b-2", "d-4"):
            tx.insert_tenant(tenant(tid))
    with storage.transaction() as tx:
        assert [t.id for t in tx.list_tenants(None, 2)] == ["a-1", "b-2"]
        assert [t.id for t in tx.list_tenants("b-2", 5)] == ["c-3", "d-4"]
        assert tx.list_tenants("d-4", 5) == []


def test_tenant_ids_are_every_live_id_or_none_over_the_limit(storage: MigratableStorage) -> None:
    """load_tenant_ids (the tenant directory's read): live and suspended ids, no tombstones;
    None once there are more than ``limit``, so a huge directory is never held."""
    assert storage.load_tenant_ids(10) == frozenset()
    with storage.transaction() as tx:
        tx.insert_tenant(tenant("a-1"))
        tx.insert_tenant(tenant("b-2", status=TenantStatus.SUSPENDED))
        tx.insert_tenant(tenant("c-3", status=TenantStatus.DELETED, sealed_secret=None))
    assert storage.load_tenant_ids(10) == {"a-1", "b-2"}
    assert storage.load_tenant_ids(2) == {"a-1", "b-2"}
    assert storage.load_tenant_ids(1) is None


def test_load_key_record_matches_the_row(storage: MigratableStorage) -> None:
    """The verifier's read returns generation, status and sealed secret of the row."""
    row = tenant(generation=4)
    with storage.transaction() as tx:
        tx.insert_tenant(row)
    assert storage.load_key_record("acme") == KeyRecord.of(row)


def test_tenants_are_isolated(storage: MigratableStorage) -> None:
    """Changing or deleting tenant A never touches tenant B's row or key record."""
    a, b = tenant("tenant-a"), tenant("tenant-b", sealed_secret=KEYRING.seal("tenant-b", b"b" * 32))
    with storage.transaction() as tx:
        tx.insert_tenant(a)
        tx.insert_tenant(b)
    with storage.transaction() as tx:
        tx.update_tenant(replace(a, status=TenantStatus.DELETED, sealed_secret=None, generation=5))
    with storage.transaction() as tx:
        assert tx.get_tenant("tenant-b") == b
    record_b = storage.load_key_record("tenant-b")
    assert record_b == KeyRecord.of(b)
    assert KEYRING.open("tenant-b", record_b.sealed_secret) == b"b" * 32  # type: ignore[union-attr, arg-type]


def test_for_update_serialises_writers(storage: MigratableStorage) -> None:
    """A second locking read waits until the first transaction commits, then sees its write."""
    with storage.transaction() as tx:
        tx.insert_tenant(tenant())
    locked, release, seen = threading.Event(), threading.Event(), []

    def second_writer() -> None:
        locked.wait(5)
        with storage.transaction() as tx:
            seen.append(tx.get_tenant("acme", for_update=True).generation)  # type: ignore[union-attr]

    worker = threading.Thread(target=second_writer)
    worker.start()
    with storage.transaction() as tx:
        tx.get_tenant("acme", for_update=True)
        locked.set()
        release.wait(0.3)  # give the other writer time to (wrongly) get through
        assert seen == []
        tx.update_tenant(tenant(generation=2))
    worker.join(10)
    assert seen == [2]


def test_migrate_is_idempotent(storage: MigratableStorage) -> None:
    """A second migrate applies nothing and nothing is pending."""
    assert storage.migrate() == []
    assert storage.pending_migrations() == []


def test_legacy_issuer_cutoff_only_where_tenants_predate_it(
    storage: MigratableStorage,
) -> None:
    """Migration 0008 (tenants become issuers) records a cut-off for the service-wide ``iss``
    only if tenants existed then: a day after it ran. Migrated empty, there is none."""
    assert storage.legacy_issuer_until() is None
    with storage.transaction() as tx:
        tx.insert_tenant(tenant())
        # As if the tenant had been there before 0008 ran: undo it, then migrate again.
        tx._conn.execute("DROP TABLE legacy_issuer")  # type: ignore[attr-defined]
        tx._conn.execute("DELETE FROM schema_migrations WHERE version = 8")  # type: ignore[attr-defined]
    assert storage.migrate() == [8]
    until = storage.legacy_issuer_until()
    assert until is not None
    assert abs(until - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=5)


def test_ping_answers(storage: MigratableStorage) -> None:
    """ping() returns quietly on a reachable database."""
    storage.ping()


@pytest.mark.parametrize(
    "url",
    ["postgresql://nobody@127.0.0.1:1/none", "sqlite:////proc/no-such-dir/x.db"],
    ids=["postgres-closed-port", "sqlite-unwritable"],
)
def test_unreachable_database_raises_storage_unavailable(url: str, tmp_path: Path) -> None:
    """Every adapter turns driver failures into StorageUnavailableError (no driver error leaks)."""
    adapter = open_storage(url, timeout=1.0)
    try:
        with pytest.raises(StorageUnavailableError):
            adapter.load_key_record("acme")
        with pytest.raises(StorageUnavailableError):
            adapter.ping()
        with pytest.raises(StorageUnavailableError), adapter.transaction() as tx:
            tx.get_tenant("acme")
    finally:
        adapter.close()


def test_other_keys_round_trip_with_the_tenant(storage: MigratableStorage) -> None:
    """replace_keys stores a tenant's other keys; every read of the tenant (admin row, key
    record, verification state, warming page) carries them, decoded as written."""
    others = (
        TenantKey("bbbbbbbb", "ES256", SealedSecret("abc", b"\x00\xffnext"), KeyState.NEXT, 10),
        TenantKey("k0", "HS256", SealedSecret("abc", bytes(range(40))), KeyState.RETIRING, 7),
    )
    with storage.transaction() as tx:
        tx.insert_tenant(tenant())
        tx.replace_keys("acme", others, WHEN)
    with storage.transaction() as tx:
        assert tx.get_tenant("acme").others == others  # type: ignore[union-attr]
        assert tx.list_tenants(None, 10)[0].others == others
    assert storage.load_key_record("acme").others == others  # type: ignore[union-attr]
    assert storage.load_verification_state("acme", "s", "j").record.others == others  # type: ignore[union-attr]
    page = storage.load_snapshot_page("", 10, revoked_since=0, expiring_after=0)
    assert page[0][0].others == others
    with storage.transaction() as tx:
        tx.replace_keys("acme", others[:1], WHEN)
    assert storage.load_key_record("acme").others == others[:1]  # type: ignore[union-attr]
