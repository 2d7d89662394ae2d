"""Clients admin API (/v1/admin/tenants/{id}/clients) on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenantauth.domain.oauth.clients import get_client
from tenantauth.domain.services import Services
from tests.integration.helpers import ADMIN, TENANTS, assert_json, assert_problem, create_tenant
from tests.support import ADMIN_TOKEN, NOW, FixedClock

CLIENTS = f"{TENANTS}/acme/clients"
NEW_CLIENT = {"name": "Billing", "scopes": ["read", "write"], "grant_types": ["client_credentials"]}
PUBLIC_FIELDS = {
    "tenant_id",
    "client_id",
    "name",
    "scopes",
    "grant_types",
    "created_at",
    "updated_at",
    "secret_rotated_at",
}
TIMESTAMP = datetime.fromtimestamp(NOW, UTC).isoformat()
BAD_JSON = {"data": '{"oops": ', "content_type": "application/json"}
HUGE_JSON = {"data": '{"pad": "' + "x" * (64 * 1024) + '"}', "content_type": "application/json"}
TWO_ADMINS = [("Authorization", f"Bearer {ADMIN_TOKEN}")] * 2


@pytest.fixture
def made(client: FlaskClient) -> dict[str, Any]:
    """Tenant 'acme' with one client; returns the creation response (with its secret)."""
    create_tenant(client, "acme")
    return assert_json(client.post(CLIENTS, json=NEW_CLIENT, headers=ADMIN), 201)  # type: ignore[no-any-return]


def routes(client_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, valid body) of every clients route, for tenant acme."""
    one = f"{CLIENTS}/{client_id}"
    return [
        ("POST", CLIENTS, NEW_CLIENT),
        ("GET", CLIENTS, None),
        ("GET", one, None),
        ("PATCH", one, {"name": "Renamed"}),
        ("DELETE", one, None),
        ("POST", f"{one}/rotate-secret", None),
    ]


def no_secret(response: TestResponse, *secrets: str) -> TestResponse:
    """Assert the response carries no client secret (any ``tas_`` value) and no hash."""
    text = response.get_data(as_text=True)
    assert "tas_" not in text
    assert "secret_hash" not in text
    assert "client_secret" not in text
    for secret in secrets:
        assert secret not in text
    return response


def stored_hash(services: Services, client_id: str) -> bytes:
    """Return the stored secret hash of acme's client."""
    return get_client(services, "acme", client_id).secret_hash


# --------------------------------------------------------------------------- success


def test_create_shows_the_secret_once_with_no_store(
    client: FlaskClient, services: Services
) -> None:
    """POST answers 201 with client_id and client_secret, Cache-Control: no-store; the
    secret verifies against what is stored, and no later response shows it."""
    create_tenant(client, "acme")
    r = client.post(CLIENTS, json=NEW_CLIENT, headers=ADMIN)
    body = assert_json(r, 201)
    assert r.headers["Cache-Control"] == "no-store"
    assert body.keys() == PUBLIC_FIELDS | {"client_secret"}
    assert body["client_id"].startswith("tac_")
    assert body["client_secret"].startswith("tas_")
    assert (body["name"], body["scopes"], body["grant_types"]) == (
        "Billing",
        ["read", "write"],
        ["client_credentials"],
    )
    assert body["created_at"] == body["secret_rotated_at"] == TIMESTAMP
    assert services.client_secrets.verify(
        body["client_secret"], stored_hash(services, body["client_id"])
    )
    one = f"{CLIENTS}/{body['client_id']}"
    shown = assert_json(no_secret(client.get(one, headers=ADMIN), body["client_secret"]), 200)
    assert shown == {k: v for k, v in body.items() if k != "client_secret"}
    listing = assert_json(no_secret(client.get(CLIENTS, headers=ADMIN)), 200)
    assert listing == {"items": [shown], "next_cursor": None}


def test_list_pages_through_every_client_once(client: FlaskClient) -> None:
    """limit=2 pages over 5 clients follow next_cursor and yield each id once, in order."""
    create_tenant(client, "acme")
    ids = [
        assert_json(client.post(CLIENTS, json={**NEW_CLIENT, "name": f"c{i}"}, headers=ADMIN), 201)[
            "client_id"
        ]
        for i in range(5)
    ]
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    while True:
        page = assert_json(no_secret(client.get(CLIENTS, query_string=query, headers=ADMIN)), 200)
        seen.extend(c["client_id"] for c in page["items"])
        if page["next_cursor"] is None:
            break
        query = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == sorted(ids)


def test_patch_changes_given_fields_only(
    client: FlaskClient, made: dict[str, Any], clock: FixedClock, services: Services
) -> None:
    """PATCH answers 200 with the changed client and keeps the secret working."""
    clock.advance(30)
    one = f"{CLIENTS}/{made['client_id']}"
    body = {"scopes": ["orders:read"], "grant_types": ["password", "refresh_token"]}
    changed = assert_json(no_secret(client.patch(one, json=body, headers=ADMIN)), 200)
    assert changed["name"] == "Billing"
    assert changed["scopes"] == ["orders:read"]
    assert changed["grant_types"] == ["password", "refresh_token"]
    assert changed["updated_at"] == datetime.fromtimestamp(NOW + 30, UTC).isoformat()
    assert changed["secret_rotated_at"] == TIMESTAMP
    assert assert_json(client.patch(one, json={"name": "B2"}, headers=ADMIN), 200)["name"] == "B2"
    assert services.client_secrets.verify(
        made["client_secret"], stored_hash(services, made["client_id"])
    )


def test_rotate_returns_a_new_secret_and_the_old_one_fails(
    client: FlaskClient, made: dict[str, Any], clock: FixedClock, services: Services
) -> None:
    """rotate-secret answers 200 with a new secret (no-store); the old secret no longer
    verifies, the new one does."""
    clock.advance(60)
    r = client.post(f"{CLIENTS}/{made['client_id']}/rotate-secret", headers=ADMIN)
    body = assert_json(r, 200)
    assert r.headers["Cache-Control"] == "no-store"
    assert body.keys() == PUBLIC_FIELDS | {"client_secret"}
    assert body["client_secret"] != made["client_secret"]
    assert body["secret_rotated_at"] == datetime.fromtimestamp(NOW + 60, UTC).isoformat()
    stored = stored_hash(services, made["client_id"])
    assert services.client_secrets.verify(body["client_secret"], stored)
    assert not services.client_secrets.verify(made["client_secret"], stored)
    shown = client.get(f"{CLIENTS}/{made['client_id']}", headers=ADMIN)
    no_secret(shown, body["client_secret"], made["client_secret"])


def test_delete_is_204_without_content(client: FlaskClient, made: dict[str, Any]) -> None:
    """DELETE answers 204 with no body or Content-Type; the client is gone afterwards."""
    one = f"{CLIENTS}/{made['client_id']}"
    r = client.delete(one, headers=ADMIN)
    assert r.status_code == 204
    assert r.get_data() == b""
    assert "Content-Type" not in r.headers
    assert_problem(client.get(one, headers=ADMIN), 404, "not_found")
    assert_problem(client.delete(one, headers=ADMIN), 404, "not_found")
    assert_problem(client.post(f"{one}/rotate-secret", headers=ADMIN), 404)


def test_other_tenant_cannot_see_or_touch_clients(
    client: FlaskClient, made: dict[str, Any]
) -> None:
    """Tenant B lists none of A's clients and gets 404 for A's client on every route."""
    create_tenant(client, "beta")
    beta = f"{TENANTS}/beta/clients"
    assert assert_json(client.get(beta, headers=ADMIN), 200) == {"items": [], "next_cursor": None}
    for method, path, body in routes(made["client_id"])[2:]:
        other = path.replace("/acme/", "/beta/")
        assert_problem(client.open(other, method=method, json=body, headers=ADMIN), 404)
    assert assert_json(client.get(f"{CLIENTS}/{made['client_id']}", headers=ADMIN), 200)


# --------------------------------------------------------------------------- errors


def test_routes_require_the_admin_token(client: FlaskClient, made: dict[str, Any]) -> None:
    """Every route: no token and a wrong token are 401 problems, two Authorization headers 400."""
    wrong = {"Authorization": "Bearer not-the-admin-token"}
    for method, path, body in routes(made["client_id"]):
        assert_problem(no_secret(client.open(path, method=method, json=body)), 401)
        assert_problem(client.open(path, method=method, json=body, headers=wrong), 401)
        assert_problem(client.open(path, method=method, json=body, headers=TWO_ADMINS), 400)


def test_unknown_or_deleted_tenant_is_not_found(client: FlaskClient, made: dict[str, Any]) -> None:
    """Every route is 404 for an unknown tenant, an impossible id and a deleted tenant."""
    for method, path, body in routes(made["client_id"]):
        for tenant in ("nobody", "NOT_AN_ID"):
            other = path.replace("/acme/", f"/{tenant}/")
            assert_problem(client.open(other, method=method, json=body, headers=ADMIN), 404)
    assert client.delete(f"{TENANTS}/acme", headers=ADMIN).status_code == 204
    for method, path, body in routes(made["client_id"]):
        assert_problem(client.open(path, method=method, json=body, headers=ADMIN), 404)


@pytest.mark.parametrize("client_id", ["tac_missing", "a%00b", "a%0Ab", "x" * 65])
@pytest.mark.usefixtures("made")
def test_unknown_client_is_not_found(client: FlaskClient, client_id: str) -> None:
    """Show, PATCH, DELETE and rotate of a client that does not (or cannot) exist are 404."""
    for method, path, body in routes(client_id)[2:]:
        assert_problem(client.open(path, method=method, json=body, headers=ADMIN), 404)


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"scopes": [], "grant_types": ["password"]}, "name"),
        ({"name": "A", "grant_types": ["password"]}, "scopes"),
        ({"name": "A", "scopes": []}, "grant_types"),
        ({**NEW_CLIENT, "grant_types": []}, "grant_types"),
        ({**NEW_CLIENT, "grant_types": ["implicit"]}, "grant_types"),
        ({**NEW_CLIENT, "scopes": "read"}, "scopes"),
        ({**NEW_CLIENT, "scopes": [f"s{i}" for i in range(51)]}, "scopes"),
        ({**NEW_CLIENT, "name": ""}, "name"),
        ({**NEW_CLIENT, "name": "n" * 201}, "name"),
        ({**NEW_CLIENT, "client_secret": "tas_mine"}, "client_secret"),
        ({**NEW_CLIENT, "client_id": "tac_mine"}, "client_id"),
    ],
    ids=[
        "no-name",
        "no-scopes",
        "no-grants",
        "empty-grants",
        "implicit",
        "scope-string",
        "51-scopes",
        "empty-name",
        "long-name",
        "own-secret",
        "own-id",
    ],
)
def test_create_schema_errors_say_where(
    client: FlaskClient, body: dict[str, Any], where: str
) -> None:
    """Schema violations are 422 problems whose errors name the field; nothing is created."""
    create_tenant(client, "acme")
    problem = assert_problem(client.post(CLIENTS, json=body, headers=ADMIN), 422)
    assert where in problem["errors"]["json"]
    assert assert_json(client.get(CLIENTS, headers=ADMIN), 200)["items"] == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"scopes": ["read write"]}, "not a scope token"),
        ({"scopes": ['a"b']}, "not a scope token"),
        ({"scopes": ["read", "read"]}, "lists 'read' twice"),
        ({"grant_types": ["password", "password"]}, "lists 'password' twice"),
        ({"name": "a\nb"}, "control characters"),
        ({"name": "   "}, "1 to 200 characters"),
    ],
    ids=["space", "quote", "dup-scope", "dup-grant", "control", "blank"],
)
@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_domain_validation_is_422_with_a_clear_detail(
    client: FlaskClient, made: dict[str, Any], method: str, change: dict[str, Any], fragment: str
) -> None:
    """Scope-token, duplicate and name rules are 422 problems saying what is wrong."""
    path = CLIENTS if method == "POST" else f"{CLIENTS}/{made['client_id']}"
    body = {**NEW_CLIENT, **change} if method == "POST" else change
    r = client.open(path, method=method, json=body, headers=ADMIN)
    assert fragment in assert_problem(r, 422, "invalid_request")["detail"]


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 501}, {"cursor": "!!!"}, {"sort": "name"}],
    ids=["zero", "over", "cursor", "unknown"],
)
@pytest.mark.usefixtures("made")
def test_invalid_list_query_is_422(client: FlaskClient, query: dict[str, Any]) -> None:
    """A bad limit, a malformed cursor or an unknown parameter is a 422 problem."""
    assert_problem(client.get(CLIENTS, query_string=query, headers=ADMIN), 422)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_malformed_or_huge_bodies(client: FlaskClient, made: dict[str, Any], method: str) -> None:
    """Malformed JSON is a 400 problem and a body over 64 KiB a 413 problem."""
    path = CLIENTS if method == "POST" else f"{CLIENTS}/{made['client_id']}"
    assert_problem(client.open(path, method=method, headers=ADMIN, **BAD_JSON), 400)
    assert_problem(client.open(path, method=method, headers=ADMIN, **HUGE_JSON), 413)
