"""The resource server repository (``tx.resource_servers``), on every storage adapter."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from tenantauth.domain.admin.admin_models import ResourceServer
from tenantauth.errors import ConflictError, NotFoundError
from tenantauth.storage import MigratableStorage
from tests.contract.factories import WHEN, tenant


@pytest.fixture
def stored(storage: MigratableStorage) -> MigratableStorage:
    """Storage holding the live tenants tenant-a, tenant-b and tenant-c."""
    with storage.transaction() as tx:
        for name in ("tenant-a", "tenant-b", "tenant-c"):
            tx.insert_tenant(tenant(name))
    return storage


def server(n: int = 1, tenants: tuple[str, ...] = ("tenant-a",)) -> ResourceServer:
    """A resource server row with id tar_…<n> (ids order like their numbers)."""
    return ResourceServer(
        id=f"tar_{'a' * 20}{n:02d}",
        name=f"server {n}",
        tenants=tenants,
        audience="orders" if n % 2 else None,
        secret_hash=bytes([n]) * 32,
        created_at=WHEN,
        updated_at=WHEN + timedelta(microseconds=n),
        secret_rotated_at=WHEN,
    )


def test_round_trips_and_conflicts(stored: MigratableStorage) -> None:
    """A server reads back field for field, tenants sorted; a second insert of its id
    conflicts; an unknown id is None."""
    made = server(1, ("tenant-a", "tenant-c"))
    with stored.transaction() as tx:
        tx.resource_servers.insert(made)
    with stored.transaction() as tx:
        assert tx.resource_servers.get(made.id) == made
        assert tx.resource_servers.get(made.id, for_update=True) == made
        assert tx.resource_servers.get(server(2).id) is None
    with pytest.raises(ConflictError), stored.transaction() as tx:
        tx.resource_servers.insert(made)


def test_list_pages_in_id_order_with_each_servers_tenants(stored: MigratableStorage) -> None:
    """list returns servers after the cursor in id order, each with its own tenants only."""
    rows = [server(3, ()), server(1, ("tenant-a", "tenant-b")), server(2, ("tenant-c",))]
    with stored.transaction() as tx:
        for row in rows:
            tx.resource_servers.insert(row)
    with stored.transaction() as tx:
        first = tx.resource_servers.list(None, 2)
        rest = tx.resource_servers.list(first[-1].id, 5)
    assert first == [rows[1], rows[2]]
    assert rest == [rows[0]]


def test_update_overwrites_and_replaces_the_tenants(stored: MigratableStorage) -> None:
    """update writes every field and the new tenant list; a missing server is NotFoundError."""
    made = server(1, ("tenant-a", "tenant-b"))
    with stored.transaction() as tx:
        tx.resource_servers.insert(made)
    changed = replace(
        made,
        name="renamed",
        tenants=("tenant-c",),
        audience=None,
        secret_hash=b"n" * 32,
        updated_at=WHEN + timedelta(hours=1),
    )
    with stored.transaction() as tx:
        tx.resource_servers.update(changed)
    with stored.transaction() as tx:
        assert tx.resource_servers.get(made.id) == changed
    with pytest.raises(NotFoundError), stored.transaction() as tx:
        tx.resource_servers.update(server(2))


def test_delete_removes_the_server_and_its_grants(stored: MigratableStorage) -> None:
    """delete returns whether the server existed; a new server with the same id starts with
    only its own tenants."""
    made = server(1, ("tenant-a", "tenant-b"))
    with stored.transaction() as tx:
        tx.resource_servers.insert(made)
    with stored.transaction() as tx:
        assert tx.resource_servers.delete(made.id) is True
        assert tx.resource_servers.delete(made.id) is False
        assert tx.resource_servers.get(made.id) is None
    again = replace(made, tenants=("tenant-c",))
    with stored.transaction() as tx:
        tx.resource_servers.insert(again)
    with stored.transaction() as tx:
        assert tx.resource_servers.get(made.id) == again


def test_rehash_only_replaces_the_expected_hash(stored: MigratableStorage) -> None:
    """rehash writes only if the stored hash is still the old one (a rotated secret stays)."""
    made = server(1)
    with stored.transaction() as tx:
        tx.resource_servers.insert(made)
        assert tx.resource_servers.rehash(made.id, b"x" * 32, b"y" * 32) is False
        assert tx.resource_servers.rehash(made.id, made.secret_hash, b"y" * 32) is True
    with stored.transaction() as tx:
        got = tx.resource_servers.get(made.id)
    assert got is not None
    assert got.secret_hash == b"y" * 32


def test_deleting_one_tenants_grants_leaves_other_tenants_alone(
    stored: MigratableStorage,
) -> None:
    """Cross-tenant isolation: delete_all(tenant-a) takes tenant-a off every server and
    touches no other tenant's grant and no server row."""
    one, two = server(1, ("tenant-a", "tenant-b")), server(2, ("tenant-a",))
    three = server(3, ("tenant-b", "tenant-c"))
    with stored.transaction() as tx:
        for row in (one, two, three):
            tx.resource_servers.insert(row)
        assert tx.resource_servers.delete_all("tenant-a") == 2
    with stored.transaction() as tx:
        assert tx.resource_servers.get(one.id) == replace(one, tenants=("tenant-b",))
        assert tx.resource_servers.get(two.id) == replace(two, tenants=())
        assert tx.resource_servers.get(three.id) == three
        assert tx.resource_servers.delete_all("tenant-a") == 0


def test_a_failed_transaction_writes_nothing(stored: MigratableStorage) -> None:
    """An insert whose transaction rolls back leaves neither the server nor its grants."""
    made = server(1, ("tenant-a",))
    with pytest.raises(RuntimeError), stored.transaction() as tx:
        tx.resource_servers.insert(made)
        raise RuntimeError("abort")
    with stored.transaction() as tx:
        assert tx.resource_servers.get(made.id) is None
        assert tx.resource_servers.delete_all("tenant-a") == 0


def test_get_for_update_waits_for_a_writer_of_the_same_server(
    stored: MigratableStorage,
) -> None:
    """A locking read waits until a transaction that locked the server commits, then sees its
    change (so a rename racing a rotation cannot write the old secret hash back)."""
    made = server(1)
    with stored.transaction() as tx:
        tx.resource_servers.insert(made)
    locked, seen = threading.Event(), []

    def writer() -> None:
        with stored.transaction() as tx:
            current = tx.resource_servers.get(made.id, for_update=True)
            assert current is not None
            locked.set()
            time.sleep(0.3)  # the reader starts meanwhile and must wait
            tx.resource_servers.update(replace(current, secret_hash=b"r" * 32))

    thread = threading.Thread(target=writer)
    thread.start()
    assert locked.wait(5)
    with stored.transaction() as tx:
        seen.append(tx.resource_servers.get(made.id, for_update=True))
    thread.join()
    assert seen[0] is not None
    assert seen[0].secret_hash == b"r" * 32
