"""The users / clients / refresh-token repositories, on every storage adapter."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tenantauth.domain.models import (
    Client,
    ClientState,
    RefreshToken,
    TenantStatus,
    User,
    UserStatus,
)
from tenantauth.errors import ConflictError, NotFoundError
from tenantauth.storage import MigratableStorage
from tests.contract.factories import WHEN, tenant


@pytest.fixture
def two_tenants(storage: MigratableStorage) -> MigratableStorage:
    """Storage holding live tenants tenant-a and tenant-b."""
    with storage.transaction() as tx:
        tx.insert_tenant(tenant("tenant-a"))
        tx.insert_tenant(tenant("tenant-b"))
    return storage


def user(tid: str = "tenant-a", name: str = "alice", **changes: object) -> User:
    """A user row."""
    base = User(tid, name, "$argon2id$fake", UserStatus.ACTIVE, {"role": "x"}, WHEN, WHEN)
    return replace(base, **changes)  # type: ignore[arg-type]


def client(tid: str = "tenant-a", cid: str = "tac_1", **changes: object) -> Client:
    """A client row."""
    base = Client(
        tid, cid, "Svc", b"h" * 32, ("read", "write"), ("client_credentials",), WHEN, WHEN, WHEN
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def refresh(tid: str = "tenant-a", digest: bytes = b"r1", family: str = "f1") -> RefreshToken:
    """A live refresh token row."""
    return RefreshToken(tid, digest, family, "tac_1", "alice", "read", 1, 0, 100, 1000)


def test_users_round_trip_update_delete(two_tenants: MigratableStorage) -> None:
    """Users insert, read back equal, update, list in order and delete."""
    with two_tenants.transaction() as tx:
        tx.users.insert(user())
        tx.users.insert(user(name="bob"))
        assert tx.users.get("tenant-a", "alice") == user()
        tx.users.update(user(status=UserStatus.DISABLED, claims={"a": [1, 2]}))
        assert tx.users.get("tenant-a", "alice").status is UserStatus.DISABLED  # type: ignore[union-attr]
        assert [u.username for u in tx.users.list("tenant-a", None, 10)] == ["alice", "bob"]
        assert [u.username for u in tx.users.list("tenant-a", "alice", 10)] == ["bob"]
        assert tx.users.delete("tenant-a", "bob") is True
        assert tx.users.delete("tenant-a", "bob") is False
        assert tx.users.get("tenant-a", "alice").claims == {"a": [1, 2]}  # type: ignore[union-attr]


def test_duplicate_user_conflicts_and_the_transaction_survives(
    two_tenants: MigratableStorage,
) -> None:
    """A taken username is a ConflictError; the rest of the transaction still commits."""
    with two_tenants.transaction() as tx:
        tx.users.insert(user())
        with pytest.raises(ConflictError):
            tx.users.insert(user())
        tx.users.insert(user(name="carol"))
    with two_tenants.transaction() as tx:
        assert tx.users.get("tenant-a", "carol") is not None
        with pytest.raises(NotFoundError):
            tx.users.update(user(name="ghost"))


def test_clients_round_trip(two_tenants: MigratableStorage) -> None:
    """Clients keep their scopes and grant types in order; secret hashes are bytes."""
    with two_tenants.transaction() as tx:
        tx.clients.insert(client())
        with pytest.raises(ConflictError):
            tx.clients.insert(client())
        assert tx.clients.get("tenant-a", "tac_1") == client()
        tx.clients.update(client(secret_hash=b"n" * 32, scopes=("read",)))
        assert tx.clients.get("tenant-a", "tac_1").scopes == ("read",)  # type: ignore[union-attr]
        assert [c.client_id for c in tx.clients.list("tenant-a", None, 5)] == ["tac_1"]
        assert tx.clients.delete("tenant-a", "tac_1")


def test_refresh_tokens_use_once_and_revoke(two_tenants: MigratableStorage) -> None:
    """A refresh token is exchanged at most once; family and user revocation mark every row."""
    with two_tenants.transaction() as tx:
        tx.refresh_tokens.insert(refresh())
        tx.refresh_tokens.insert(refresh(digest=b"r2"))
        tx.refresh_tokens.insert(refresh(digest=b"r3", family="f2"))
        assert tx.refresh_tokens.get("tenant-a", b"r1") == refresh()
        assert tx.refresh_tokens.mark_used("tenant-a", b"r1", 200, b"r2") is True
        assert tx.refresh_tokens.mark_used("tenant-a", b"r1", 201, b"r9") is False
        used = tx.refresh_tokens.get("tenant-a", b"r1")
        assert (used.used_at, used.replaced_by) == (200, b"r2")  # type: ignore[union-attr]
        assert tx.refresh_tokens.revoke_family("tenant-a", "f1", 300) == 2
        assert tx.refresh_tokens.mark_used("tenant-a", b"r2", 301, b"rx") is False
        assert tx.refresh_tokens.revoke("tenant-a", b"r3", 400) is True
        assert tx.refresh_tokens.revoke("tenant-a", b"r3", 401) is False
        tx.refresh_tokens.insert(refresh(digest=b"r4", family="f3"))
        assert tx.refresh_tokens.revoke_user("tenant-a", "alice", 500) == 1


def test_accounts_are_isolated_per_tenant(two_tenants: MigratableStorage) -> None:
    """The same username, client id and token hash in tenant B are different rows."""
    with two_tenants.transaction() as tx:
        tx.users.insert(user())
        tx.clients.insert(client())
        tx.refresh_tokens.insert(refresh())
        assert tx.users.get("tenant-b", "alice") is None
        assert tx.clients.get("tenant-b", "tac_1") is None
        assert tx.refresh_tokens.get("tenant-b", b"r1") is None
        tx.users.insert(user("tenant-b"))
        assert tx.users.delete("tenant-b", "alice")
        assert tx.users.get("tenant-a", "alice") is not None
        assert tx.refresh_tokens.revoke_user("tenant-b", "alice", 9) == 0
        assert tx.users.list("tenant-b", None, 10) == []


def test_load_client_state_reads_tenant_client_and_subject(
    two_tenants: MigratableStorage,
) -> None:
    """One read returns the tenant, its client, the client id's subject version and a user of
    that name; an unknown client still returns the tenant; an unknown tenant returns None."""
    with two_tenants.transaction() as tx:
        tx.clients.insert(client())
        tenant_a = tx.get_tenant("tenant-a")
    assert tenant_a is not None
    assert two_tenants.load_client_state("tenant-a", "tac_1") == ClientState(tenant_a, client())
    assert two_tenants.load_client_state("tenant-a", "tac_2") == ClientState(tenant_a, None)
    assert two_tenants.load_client_state("nobody", "tac_1") is None
    with two_tenants.transaction() as tx:
        tx.revocations.bump_subject("tenant-a", "tac_1", 100)
        tx.revocations.bump_subject("tenant-a", "tac_1", 101)
        tx.users.insert(user(name="tac_1", status=UserStatus.DISABLED))
        tx.update_tenant(replace(tenant_a, status=TenantStatus.SUSPENDED))
    state = two_tenants.load_client_state("tenant-a", "tac_1")
    assert state == ClientState(
        replace(tenant_a, status=TenantStatus.SUSPENDED), client(), 2, UserStatus.DISABLED
    )


def test_load_client_state_is_isolated_per_tenant(two_tenants: MigratableStorage) -> None:
    """Tenant B's read never sees tenant A's client, subject version or user of that name."""
    with two_tenants.transaction() as tx:
        tx.clients.insert(client())
        tx.revocations.bump_subject("tenant-a", "tac_1", 100)
        tx.users.insert(user(name="tac_1", status=UserStatus.DISABLED))
        tenant_b = tx.get_tenant("tenant-b")
    assert tenant_b is not None
    assert two_tenants.load_client_state("tenant-b", "tac_1") == ClientState(tenant_b, None)
