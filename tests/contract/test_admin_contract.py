"""The admin-key and audit repositories (``tx.admin_keys``, ``tx.audit``), on every adapter."""

from __future__ import annotations

import threading
from datetime import timedelta, timezone

import pytest

from tenantauth.domain.admin.admin_models import AdminKey, AuditEntry, AuditEvent, AuditQuery
from tenantauth.errors import ConflictError
from tenantauth.storage import MigratableStorage
from tests.contract.factories import WHEN, tenant


@pytest.fixture
def stored(storage: MigratableStorage) -> MigratableStorage:
    """Storage holding the live tenant tenant-a."""
    with storage.transaction() as tx:
        tx.insert_tenant(tenant("tenant-a"))
    return storage


def key(key_id: str = "0123456789abcdef", tenant_id: str | None = None) -> AdminKey:
    """An admin key row."""
    return AdminKey(key_id, "ops", tenant_id, b"k" * 32, WHEN, WHEN + timedelta(days=1))


def entry(seq: int, tenant_id: str | None = "tenant-a", **event: str) -> AuditEntry:
    """An audit entry ``seq`` seconds after WHEN (hashes are arbitrary bytes here)."""
    fields = {"actor": "bootstrap", "action": "user.create", "target": "alice", **event}
    ev = AuditEvent(
        fields["actor"], tenant_id, fields["action"], fields["target"], f"req-{seq}", "success"
    )
    when = WHEN + timedelta(seconds=seq, microseconds=seq)
    return AuditEntry(seq, when, ev, bytes([seq - 1]) * 32, bytes([seq]) * 32)


def test_admin_key_round_trips_and_conflicts(stored: MigratableStorage) -> None:
    """A key reads back field for field (times in UTC); a second insert of its id conflicts."""
    made = key(tenant_id="tenant-a")
    with stored.transaction() as tx:
        tx.admin_keys.insert(made)
    with stored.transaction() as tx:
        assert tx.admin_keys.get(made.id) == made
        assert tx.admin_keys.get("ffffffffffffffff") is None
    with pytest.raises(ConflictError), stored.transaction() as tx:
        tx.admin_keys.insert(made)


def test_admin_keys_list_in_id_order_by_page(stored: MigratableStorage) -> None:
    """list returns ids after the cursor, in order, at most ``limit``."""
    ids = ["0000000000000003", "0000000000000001", "0000000000000002"]
    with stored.transaction() as tx:
        for i in ids:
            tx.admin_keys.insert(key(i))
    with stored.transaction() as tx:
        assert [k.id for k in tx.admin_keys.list(None, 2)] == sorted(ids)[:2]
        assert [k.id for k in tx.admin_keys.list(sorted(ids)[1], 5)] == [sorted(ids)[2]]


def test_revoke_is_once_and_touch_is_throttled(stored: MigratableStorage) -> None:
    """revoke changes a key once; touch writes only when last_used_at is older than asked."""
    with stored.transaction() as tx:
        tx.admin_keys.insert(key())
        assert tx.admin_keys.revoke("0123456789abcdef", WHEN)
        assert not tx.admin_keys.revoke("0123456789abcdef", WHEN + timedelta(hours=1))
        assert tx.admin_keys.touch("0123456789abcdef", WHEN, WHEN - timedelta(minutes=1))
        later = WHEN + timedelta(seconds=30)
        assert not tx.admin_keys.touch("0123456789abcdef", later, later - timedelta(minutes=1))
    with stored.transaction() as tx:
        got = tx.admin_keys.get("0123456789abcdef")
    assert got is not None
    assert (got.revoked_at, got.last_used_at) == (WHEN, WHEN)


def test_audit_append_and_walk_round_trip(stored: MigratableStorage) -> None:
    """Entries read back exactly (microseconds, bytes, None target); head is the last one."""
    entries = [entry(1), entry(2, None, target=""), entry(3, action="tenant.rotate")]
    entries[1] = AuditEntry(
        2,
        entries[1].occurred_at,
        AuditEvent("k", None, "a", None, "r", "403"),
        entries[1].prev_hash,
        entries[1].entry_hash,
    )
    with stored.transaction() as tx:
        assert tx.audit.lock_head() is None
        for e in entries:
            tx.audit.append(e)
    with stored.transaction() as tx:
        assert tx.audit.walk(0, 10) == entries
        assert tx.audit.walk(1, 1) == entries[1:2]
        assert tx.audit.lock_head() == entries[2]


def test_audit_seq_is_unique(stored: MigratableStorage) -> None:
    """Appending a seq that exists is a ConflictError (a writer that skipped the lock)."""
    with stored.transaction() as tx:
        tx.audit.append(entry(1))
    with pytest.raises(ConflictError), stored.transaction() as tx:
        tx.audit.append(entry(1, action="other"))


def test_audit_search_filters_and_pages_newest_first(stored: MigratableStorage) -> None:
    """Each filter narrows the result; results are newest first and resume before a seq."""
    with stored.transaction() as tx:
        tx.audit.append(entry(1))
        tx.audit.append(entry(2, "tenant-b", actor="0123456789abcdef"))
        tx.audit.append(entry(3, action="tenant.rotate"))
        tx.audit.append(entry(4, None, action="admin_key.create"))

    def seqs(query: AuditQuery, before: int | None = None, limit: int = 10) -> list[int]:
        with stored.transaction() as tx:
            return [e.seq for e in tx.audit.search(query, before, limit)]

    assert seqs(AuditQuery()) == [4, 3, 2, 1]
    assert seqs(AuditQuery(), before=3, limit=1) == [2]
    assert seqs(AuditQuery(tenant_id="tenant-a")) == [3, 1]
    assert seqs(AuditQuery(tenant_id="tenant-b")) == [2]
    assert seqs(AuditQuery(action="tenant.rotate")) == [3]
    assert seqs(AuditQuery(actor="0123456789abcdef")) == [2]
    # Bounds are inclusive, compared as instants whatever their time zone.
    assert seqs(AuditQuery(since=entry(2).occurred_at, until=entry(3).occurred_at)) == [3, 2]
    shifted = entry(3).occurred_at.astimezone(timezone(timedelta(hours=5)))
    assert seqs(AuditQuery(since=shifted)) == [4, 3]
    assert seqs(AuditQuery(tenant_id="tenant-a", action="user.create")) == [1]


def test_concurrent_appenders_serialise_on_lock_head(stored: MigratableStorage) -> None:
    """Writers that take lock_head before reading the head never fork the chain: every
    append succeeds and the seqs are 1..N without a conflict."""
    errors: list[BaseException] = []

    def append_one() -> None:
        try:
            with stored.transaction() as tx:
                head = tx.audit.lock_head()
                tx.audit.append(entry(head.seq + 1 if head else 1))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=append_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with stored.transaction() as tx:
        assert [e.seq for e in tx.audit.walk(0, 100)] == list(range(1, 9))
