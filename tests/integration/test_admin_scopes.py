"""Every scope rule of admin keys, on both backends.

A tenant admin (key limited to ``acme``) manages acme's users, clients, rotation, tokens and
revocations; everything else is a 403 decided from the URL alone, identical whether the other
tenant exists or not. A global key can do what the bootstrap token can.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.integration.admin_support import (
    AUDIT,
    KEYS,
    PASSWORD,
    key_headers,
    make_key,
    without_volatile,
)
from tests.integration.helpers import ADMIN, TENANTS, assert_json, assert_problem, create_tenant

Call = tuple[str, str, dict[str, Any] | None]


@pytest.fixture
def world(client: FlaskClient) -> dict[str, Any]:
    """Tenants acme and beta, each with user alice and one client; a key for acme only."""
    ids: dict[str, Any] = {}
    for tid in ("acme", "beta"):
        create_tenant(client, tid)
        body = {"username": "alice", "password": PASSWORD}
        assert_json(client.post(f"{TENANTS}/{tid}/users", json=body, headers=ADMIN), 201)
        made = {"name": "svc", "scopes": ["read"], "grant_types": ["client_credentials"]}
        r = client.post(f"{TENANTS}/{tid}/clients", json=made, headers=ADMIN)
        ids[tid] = assert_json(r, 201)["client_id"]
    ids["acme_key"] = make_key(client, "acme")
    ids["global_key"] = make_key(client)
    return ids


def tenant_calls(tid: str, client_id: str) -> list[Call]:
    """Every admin call on one tenant that a tenant admin of that tenant may make."""
    base = f"{TENANTS}/{tid}"
    return [
        ("GET", base, None),
        ("GET", f"{base}/users", None),
        ("POST", f"{base}/users", {"username": "bob", "password": PASSWORD}),
        ("GET", f"{base}/users/alice", None),
        ("PATCH", f"{base}/users/alice", {"claims": {"team": "x"}}),
        ("POST", f"{base}/users/alice/revoke", None),
        ("POST", f"{base}/subjects/revoke", {"sub": "team/alice"}),
        ("DELETE", f"{base}/users/bob", None),
        ("GET", f"{base}/clients", None),
        ("POST", f"{base}/clients", {"name": "c", "scopes": [], "grant_types": ["password"]}),
        ("GET", f"{base}/clients/{client_id}", None),
        ("PATCH", f"{base}/clients/{client_id}", {"name": "renamed"}),
        ("POST", f"{base}/clients/{client_id}/rotate-secret", None),
        ("POST", f"{base}/tokens", {"sub": "alice"}),
        ("POST", f"{base}/tokens/revoke", {"token": "not-a-token"}),
        ("POST", f"{base}/rotate", None),
        ("DELETE", f"{base}/clients/{client_id}", None),
    ]


def global_only_calls(key_id: str) -> list[Call]:
    """Calls reserved to global admins even when they name the tenant admin's own tenant."""
    return [
        ("POST", TENANTS, {"id": "gamma", "name": "Gamma"}),
        ("GET", TENANTS, None),
        ("PATCH", f"{TENANTS}/acme", {"name": "Acme 2"}),
        ("DELETE", f"{TENANTS}/acme", None),
        ("POST", KEYS, {"name": "mine"}),
        ("GET", KEYS, None),
        ("GET", f"{KEYS}/{key_id}", None),
        ("POST", f"{KEYS}/{key_id}/revoke", None),
    ]


def send(client: FlaskClient, call: Call, headers: dict[str, str]) -> Any:
    """Make one call."""
    method, path, body = call
    return client.open(path, method=method, json=body, headers=headers)


def test_tenant_admin_manages_its_own_tenant(client: FlaskClient, world: dict[str, Any]) -> None:
    """Every user, client, token, revocation and rotation call on acme succeeds (2xx)."""
    headers = key_headers(world["acme_key"])
    for call in tenant_calls("acme", world["acme"]):
        r = send(client, call, headers)
        assert 200 <= r.status_code < 300, (call, r.get_json())


def test_tenant_admin_is_refused_other_tenants_alike(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    """The same calls on beta (exists) and ghost (does not) are 403 with the same body, and
    beta is unchanged afterwards."""
    headers = key_headers(world["acme_key"])
    for existing, missing in zip(
        tenant_calls("beta", world["beta"]), tenant_calls("ghost", world["beta"]), strict=True
    ):
        a = assert_problem(send(client, existing, headers), 403, "forbidden")
        b = assert_problem(send(client, missing, headers), 403, "forbidden")
        assert without_volatile(a) == without_volatile(b)
    users = client.get(f"{TENANTS}/beta/users", headers=ADMIN).get_json()["items"]
    assert [u["username"] for u in users] == ["alice"]
    assert client.get(f"{TENANTS}/beta", headers=ADMIN).get_json()["key_version"] == 1


def test_tenant_admin_cannot_manage_tenants_or_keys(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    """Creating, listing, updating or deleting tenants and anything about keys is a 403."""
    headers = key_headers(world["acme_key"])
    for call in global_only_calls(world["acme_key"]["id"]):
        assert_problem(send(client, call, headers), 403, "forbidden")
    assert client.get(f"{TENANTS}/acme", headers=ADMIN).get_json()["name"] == "Acme"
    assert_problem(client.get(f"{TENANTS}/gamma", headers=ADMIN), 404)


def test_tenant_admin_reads_only_its_audit(client: FlaskClient, world: dict[str, Any]) -> None:
    """The audit listing is narrowed to acme; asking for beta is a 403."""
    headers = key_headers(world["acme_key"])
    items = assert_json(client.get(AUDIT, headers=headers), 200)["items"]
    assert items
    assert {e["tenant_id"] for e in items} == {"acme"}
    r = client.get(AUDIT, query_string={"tenant": "beta"}, headers=headers)
    assert_problem(r, 403, "forbidden")
    own = client.get(AUDIT, query_string={"tenant": "acme"}, headers=headers)
    assert assert_json(own, 200)["items"] == items


def test_global_key_can_do_everything(client: FlaskClient, world: dict[str, Any]) -> None:
    """A global key may make the global-only calls and act on any tenant."""
    headers = key_headers(world["global_key"])
    for call in global_only_calls(world["acme_key"]["id"])[:2]:
        assert 200 <= send(client, call, headers).status_code < 300
    for call in tenant_calls("beta", world["beta"]):
        assert 200 <= send(client, call, headers).status_code < 300, call
    revoked = client.post(f"{KEYS}/{world['acme_key']['id']}/revoke", headers=headers)
    assert assert_json(revoked, 200)["revoked_at"] is not None
    assert_problem(client.get(f"{TENANTS}/acme", headers=key_headers(world["acme_key"])), 401)


def test_tenant_key_of_a_deleted_tenant_reaches_nothing(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    """After acme is deleted its key authenticates but every acme call is a 404 (no data)."""
    assert client.delete(f"{TENANTS}/acme", headers=ADMIN).status_code == 204
    headers = key_headers(world["acme_key"])
    assert_problem(client.get(f"{TENANTS}/acme/users", headers=headers), 404)
    assert_problem(client.get(f"{TENANTS}/beta/users", headers=headers), 403)
