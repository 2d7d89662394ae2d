"""OAuth client use cases over SQLite + fakeredis with a fixed clock."""

from __future__ import annotations

from typing import Any

import pytest

from tenantauth.crypto.client_secrets import CLIENT_ID_PREFIX, CLIENT_SECRET_PREFIX
from tenantauth.domain.models import Tenant
from tenantauth.domain.oauth.clients import (
    GRANT_TYPES,
    MAX_SCOPES,
    create_client,
    delete_client,
    get_client,
    list_clients,
    rotate_client_secret,
    update_client,
)
from tenantauth.domain.paging import MAX_PAGE_SIZE
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import delete_tenant
from tenantauth.errors import InvalidRequestError, NotFoundError
from tests.support import NOW, FixedClock

CC = ["client_credentials"]


@pytest.mark.usefixtures("acme")
def test_create_returns_secret_once_and_stores_only_its_hash(svc: Services) -> None:
    """The secret is returned with the client; storage keeps a keyed hash that verifies it."""
    client, secret = create_client(svc, "acme", "Billing", ["read", "write"], GRANT_TYPES)
    assert client.client_id.startswith(CLIENT_ID_PREFIX)
    assert secret.startswith(CLIENT_SECRET_PREFIX)
    assert len(secret) == 47
    assert (client.name, client.scopes, client.grant_types) == (
        "Billing",
        ("read", "write"),
        GRANT_TYPES,
    )
    assert svc.client_secrets.verify(secret, client.secret_hash)
    assert secret.encode() not in client.secret_hash
    assert secret not in repr(client)
    assert "secret_hash" not in repr(client)
    assert get_client(svc, "acme", client.client_id) == client


@pytest.mark.usefixtures("acme")
def test_each_client_gets_its_own_id_and_secret(svc: Services) -> None:
    """Two clients never share an id or a secret."""
    a, secret_a = create_client(svc, "acme", "A", [], CC)
    b, secret_b = create_client(svc, "acme", "B", [], CC)
    assert a.client_id != b.client_id
    assert secret_a != secret_b
    assert not svc.client_secrets.verify(secret_a, b.secret_hash)


@pytest.mark.parametrize(
    ("scopes", "fragment"),
    [
        (["read write"], "not a scope token"),
        (['say"hi'], "not a scope token"),
        (["back\\slash"], "not a scope token"),
        ([""], "not a scope token"),
        (["caf\u00e9"], "not a scope token"),
        (["read", "read"], "lists 'read' twice"),
        ([f"s{i}" for i in range(MAX_SCOPES + 1)], f"at most {MAX_SCOPES} scopes"),
        (["s" * 600, "t" * 600], "at most 1024 characters"),
        ("read", "not a string"),
    ],
    ids=["space", "quote", "backslash", "empty", "non-ascii", "dup", "too-many", "long", "str"],
)
@pytest.mark.usefixtures("acme")
def test_bad_scopes_rejected(svc: Services, scopes: Any, fragment: str) -> None:
    """Scopes are distinct RFC 6749 §3.3 scope-tokens, at most 50; the message says why."""
    with pytest.raises(InvalidRequestError) as caught:
        create_client(svc, "acme", "A", scopes, CC)
    assert fragment in caught.value.detail
    assert list_clients(svc, "acme").items == []


@pytest.mark.usefixtures("acme")
def test_scope_tokens_may_use_every_nqchar(svc: Services) -> None:
    """Scope tokens may hold any printable ASCII but space, '"' and '\\' (RFC 6749 §3.3)."""
    scopes = ["!#$%&'()*+,-./:;<=>?@[]^_`{|}~", "orders:read", "https://api.example/x"]
    assert create_client(svc, "acme", "A", scopes, CC)[0].scopes == tuple(scopes)


@pytest.mark.parametrize(
    ("grants", "fragment"),
    [
        ([], "non-empty"),
        (["implicit"], "'implicit' is not one of"),
        (["authorization_code"], "'authorization_code' is not one of"),
        (["password", "password"], "lists 'password' twice"),
        ("password", "non-empty list"),
    ],
    ids=["empty", "implicit", "code", "dup", "str"],
)
@pytest.mark.usefixtures("acme")
def test_bad_grant_types_rejected(svc: Services, grants: Any, fragment: str) -> None:
    """Grant types are a non-empty, duplicate-free subset of the three supported grants."""
    with pytest.raises(InvalidRequestError) as caught:
        create_client(svc, "acme", "A", [], grants)
    assert fragment in caught.value.detail


@pytest.mark.parametrize(
    "name", ["", "  ", "n" * 201, "a\nb"], ids=["empty", "blank", "long", "nl"]
)
@pytest.mark.usefixtures("acme")
def test_bad_name_rejected(svc: Services, name: str) -> None:
    """Names are 1 to 200 characters, not blank, without control characters."""
    with pytest.raises(InvalidRequestError):
        create_client(svc, "acme", name, [], CC)


def test_create_in_unknown_or_deleted_tenant_is_not_found(svc: Services, acme: Tenant) -> None:
    """Clients can only be created in live tenants."""
    with pytest.raises(NotFoundError):
        create_client(svc, "nobody", "A", [], CC)
    delete_tenant(svc, acme.id)
    with pytest.raises(NotFoundError):
        create_client(svc, "acme", "A", [], CC)


@pytest.mark.usefixtures("acme")
def test_rotate_replaces_the_secret(svc: Services, clock: FixedClock) -> None:
    """After a rotation the old secret fails and only the new one verifies."""
    client, old = create_client(svc, "acme", "A", [], CC)
    clock.advance(60)
    rotated, new = rotate_client_secret(svc, "acme", client.client_id)
    stored = get_client(svc, "acme", client.client_id)
    assert stored == rotated
    assert new != old
    assert svc.client_secrets.verify(new, stored.secret_hash)
    assert not svc.client_secrets.verify(old, stored.secret_hash)
    assert stored.secret_rotated_at.timestamp() == NOW + 60
    assert stored.created_at.timestamp() == NOW
    assert (stored.name, stored.scopes) == (client.name, client.scopes)


@pytest.mark.usefixtures("acme")
def test_update_changes_only_given_fields(svc: Services) -> None:
    """PATCH-style update replaces the given fields and keeps the secret."""
    client, secret = create_client(svc, "acme", "A", ["read"], CC)
    renamed = update_client(svc, "acme", client.client_id, name="Renamed")
    assert (renamed.name, renamed.scopes, renamed.grant_types) == (
        "Renamed",
        ("read",),
        ("client_credentials",),
    )
    changed = update_client(
        svc, "acme", client.client_id, scopes=[], grant_types=["password", "refresh_token"]
    )
    assert (changed.name, changed.scopes, changed.grant_types) == (
        "Renamed",
        (),
        ("password", "refresh_token"),
    )
    assert svc.client_secrets.verify(secret, get_client(svc, "acme", client.client_id).secret_hash)


@pytest.mark.usefixtures("acme")
def test_update_with_bad_value_changes_nothing(svc: Services) -> None:
    """An invalid field refuses the whole update."""
    client, _ = create_client(svc, "acme", "A", ["read"], CC)
    with pytest.raises(InvalidRequestError):
        update_client(svc, "acme", client.client_id, name="B", grant_types=["implicit"])
    assert get_client(svc, "acme", client.client_id) == client


@pytest.mark.usefixtures("acme")
def test_list_pages_with_a_cursor(svc: Services) -> None:
    """Listing is ordered by client_id and follows next_cursor to the end."""
    ids = sorted(create_client(svc, "acme", f"c{i}", [], CC)[0].client_id for i in range(3))
    first = list_clients(svc, "acme", limit=2)
    assert [c.client_id for c in first.items] == ids[:2]
    assert first.next_cursor is not None
    rest = list_clients(svc, "acme", first.next_cursor, limit=2)
    assert [c.client_id for c in rest.items] == ids[2:]
    assert rest.next_cursor is None


@pytest.mark.parametrize(("cursor", "limit"), [("!!!", 10), (None, 0), (None, MAX_PAGE_SIZE + 1)])
@pytest.mark.usefixtures("acme")
def test_list_rejects_bad_cursor_or_limit(svc: Services, cursor: str | None, limit: int) -> None:
    """A malformed cursor or a limit outside 1..500 is an InvalidRequestError."""
    with pytest.raises(InvalidRequestError):
        list_clients(svc, "acme", cursor, limit)


@pytest.mark.usefixtures("acme")
def test_delete_removes_the_client(svc: Services) -> None:
    """A deleted client is gone; deleting it again is NotFoundError."""
    client, _ = create_client(svc, "acme", "A", [], CC)
    delete_client(svc, "acme", client.client_id)
    with pytest.raises(NotFoundError):
        get_client(svc, "acme", client.client_id)
    with pytest.raises(NotFoundError):
        delete_client(svc, "acme", client.client_id)


@pytest.mark.parametrize("client_id", ["tac_missing", "a\x00b", "", "x" * 65, "a/b"])
@pytest.mark.usefixtures("acme")
def test_unknown_client_is_not_found(svc: Services, client_id: str) -> None:
    """Unknown ids, and ids no client can have, are NotFoundError for every operation."""
    for action in (get_client, rotate_client_secret, delete_client):
        with pytest.raises(NotFoundError):
            action(svc, "acme", client_id)
    with pytest.raises(NotFoundError):
        update_client(svc, "acme", client_id, name="x")


def test_other_tenant_cannot_see_or_touch_a_client(
    svc: Services, acme: Tenant, other: Tenant
) -> None:
    """Tenant 'other' neither lists, shows, rotates nor deletes acme's client."""
    client, secret = create_client(svc, acme.id, "A", [], CC)
    assert list_clients(svc, other.id).items == []
    for action in (get_client, rotate_client_secret, delete_client):
        with pytest.raises(NotFoundError):
            action(svc, other.id, client.client_id)
    assert get_client(svc, acme.id, client.client_id) == client
    assert svc.client_secrets.verify(secret, client.secret_hash)
