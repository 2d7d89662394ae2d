"""Resource server use cases over SQLite + fakeredis with a fixed clock."""

from __future__ import annotations

from typing import Any

import pytest

from tenantauth.crypto.client_secrets import (
    RESOURCE_SERVER_ID_PREFIX,
    RESOURCE_SERVER_SECRET_PREFIX,
)
from tenantauth.domain.oauth.resource_servers import (
    MAX_TENANTS,
    create_resource_server,
    delete_resource_server,
    get_resource_server,
    list_resource_servers,
    rotate_resource_server_secret,
    secret_hasher,
    update_resource_server,
)
from tenantauth.domain.services import Services
from tenantauth.domain.tenants import delete_tenant
from tenantauth.errors import InvalidRequestError, NotFoundError
from tests.support import NOW, FixedClock

pytestmark = pytest.mark.usefixtures("acme", "other")


def test_create_returns_secret_once_and_stores_only_its_hash(svc: Services) -> None:
    """The secret comes with the new server; storage keeps a keyed hash that verifies it."""
    server, secret = create_resource_server(svc, "Orders API", ["other", "acme"], "orders")
    assert server.id.startswith(RESOURCE_SERVER_ID_PREFIX)
    assert len(server.id) == 26
    assert secret.startswith(RESOURCE_SERVER_SECRET_PREFIX)
    assert (server.name, server.tenants, server.audience) == (
        "Orders API",
        ("acme", "other"),
        "orders",
    )
    assert secret_hasher(svc).verify(secret, server.secret_hash)
    assert not svc.client_secrets.verify(secret, server.secret_hash)  # its own subkey
    assert secret not in repr(server)
    assert "secret_hash" not in repr(server)
    assert get_resource_server(svc, server.id) == server


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": " "}, "name must be"),
        ({"name": "x" * 201}, "name must be"),
        ({"name": "a\nb"}, "control characters"),
        ({"name": "a\ud800"}, "lone surrogates"),
        ({"tenants": "acme"}, "not a string"),
        ({"tenants": ["acme", "acme"]}, "twice"),
        ({"tenants": ["Acme"]}, "is not a tenant id"),
        ({"tenants": [f"t{i:03d}" for i in range(MAX_TENANTS + 1)]}, "at most"),
        ({"audience": ""}, "audience must be"),
        ({"audience": "a" * 256}, "audience must be"),
        ({"audience": "a\x00b"}, "audience must be"),
        ({"audience": "\udc00"}, "audience must be"),
    ],
)
def test_create_refuses_bad_input(svc: Services, changes: dict[str, Any], fragment: str) -> None:
    """Names, tenant lists and audiences are checked, and the error says what is wrong."""
    args: dict[str, Any] = {"name": "API", "tenants": ["acme"], "audience": None, **changes}
    with pytest.raises(InvalidRequestError, match=fragment):
        create_resource_server(svc, args["name"], args["tenants"], args["audience"])


def test_create_refuses_unknown_and_deleted_tenants(svc: Services) -> None:
    """A tenant that does not exist, or was deleted, cannot be listed (404)."""
    with pytest.raises(NotFoundError, match="ghost"):
        create_resource_server(svc, "API", ["acme", "ghost"])
    delete_tenant(svc, "other")
    with pytest.raises(NotFoundError, match="other"):
        create_resource_server(svc, "API", ["other"])
    assert list_resource_servers(svc).items == []


def test_update_changes_only_what_is_given(svc: Services, clock: FixedClock) -> None:
    """PATCH semantics: None keeps a field, KEEP keeps the audience, None clears it."""
    server, _ = create_resource_server(svc, "API", ["acme"], "orders")
    clock.advance(10)
    renamed = update_resource_server(svc, server.id, name="Orders")
    assert (renamed.name, renamed.tenants, renamed.audience) == ("Orders", ("acme",), "orders")
    assert renamed.updated_at.timestamp() == NOW + 10
    moved = update_resource_server(svc, server.id, tenants=["other"], audience=None)
    assert (moved.tenants, moved.audience) == (("other",), None)
    assert moved.secret_hash == server.secret_hash
    assert get_resource_server(svc, server.id) == moved


def test_update_refuses_unknown_tenants_and_changes_nothing(svc: Services) -> None:
    """An update naming a tenant that does not exist is a 404 and leaves the server as it was."""
    server, _ = create_resource_server(svc, "API", ["acme"])
    with pytest.raises(NotFoundError):
        update_resource_server(svc, server.id, name="New", tenants=["acme", "ghost"])
    assert get_resource_server(svc, server.id) == server


def test_rotate_replaces_the_secret(svc: Services, clock: FixedClock) -> None:
    """A rotation returns a new secret; the old one no longer verifies."""
    server, old = create_resource_server(svc, "API", ["acme"])
    clock.advance(5)
    rotated, new = rotate_resource_server_secret(svc, server.id)
    assert new != old
    assert secret_hasher(svc).verify(new, rotated.secret_hash)
    assert not secret_hasher(svc).verify(old, rotated.secret_hash)
    assert rotated.secret_rotated_at.timestamp() == NOW + 5
    assert get_resource_server(svc, server.id) == rotated


def test_delete_then_everything_is_404(svc: Services) -> None:
    """A deleted server is gone: show, update, rotate and delete are 404."""
    server, _ = create_resource_server(svc, "API", ["acme"])
    delete_resource_server(svc, server.id)
    for call in (
        lambda: get_resource_server(svc, server.id),
        lambda: update_resource_server(svc, server.id, name="x"),
        lambda: rotate_resource_server_secret(svc, server.id),
        lambda: delete_resource_server(svc, server.id),
    ):
        with pytest.raises(NotFoundError):
            call()


@pytest.mark.parametrize(
    "server_id", ["", "tac_AAAAAAAAAAAAAAAAAAAAAA", "tar_x", "tar_" + "A" * 23]
)
def test_impossible_ids_are_404_without_lookup(svc: Services, server_id: str) -> None:
    """Ids no server can have are 404."""
    with pytest.raises(NotFoundError):
        get_resource_server(svc, server_id)


def test_deleting_a_tenant_takes_it_off_every_server(svc: Services) -> None:
    """A deleted tenant leaves every server's list, so a re-created one starts unlisted."""
    one, _ = create_resource_server(svc, "One", ["acme", "other"])
    two, _ = create_resource_server(svc, "Two", ["other"])
    delete_tenant(svc, "other")
    assert get_resource_server(svc, one.id).tenants == ("acme",)
    assert get_resource_server(svc, two.id).tenants == ()


def test_listing_pages_in_id_order(svc: Services) -> None:
    """The listing follows cursors in id order, each server with its tenants."""
    made = sorted(create_resource_server(svc, f"S{i}", ["acme"])[0].id for i in range(5))
    first = list_resource_servers(svc, limit=2)
    assert [s.id for s in first.items] == made[:2]
    assert all(s.tenants == ("acme",) for s in first.items)
    rest = list_resource_servers(svc, first.next_cursor, limit=10)
    assert [s.id for s in rest.items] == made[2:]
    assert rest.next_cursor is None
    with pytest.raises(InvalidRequestError):
        list_resource_servers(svc, "!!!")
