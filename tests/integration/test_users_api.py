"""Users admin API (/v1/admin/tenants/{id}/users) on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    create_tenant,
    issue,
    verify_status,
)
from tests.support import ADMIN_TOKEN, NOW, FixedClock

USERS = f"{TENANTS}/acme/users"
ALICE = f"{USERS}/alice"
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a whole new passphrase"
TIMESTAMP = datetime.fromtimestamp(NOW, UTC).isoformat()
USER_FIELDS = {"tenant_id", "username", "status", "claims", "created_at", "updated_at"}
BAD_JSON = {"data": '{"oops": ', "content_type": "application/json"}
HUGE_JSON = {"data": '{"pad": "' + "x" * (64 * 1024) + '"}', "content_type": "application/json"}
TWO_ADMINS = [("Authorization", f"Bearer {ADMIN_TOKEN}")] * 2
#: (method, path, valid body) of every users route, for tenant acme and user alice.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", USERS, {"username": "bob", "password": PASSWORD}),
    ("GET", USERS, None),
    ("GET", ALICE, None),
    ("PATCH", ALICE, {"status": "disabled"}),
    ("DELETE", ALICE, None),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]


@pytest.fixture
def acme(client: FlaskClient) -> dict[str, Any]:
    """Tenant 'acme' with the user 'alice' (claims {"plan": "pro"})."""
    tenant = create_tenant(client, "acme")
    body = {"username": "alice", "password": PASSWORD, "claims": {"plan": "pro"}}
    assert_json(client.post(USERS, json=body, headers=ADMIN), 201)
    return tenant


def no_secrets(response: TestResponse, *passwords: str) -> TestResponse:
    """Assert the response carries no password hash and none of ``passwords``."""
    text = response.get_data(as_text=True)
    assert "argon2" not in text
    assert "password_hash" not in text
    for password in (PASSWORD, NEW_PASSWORD, *passwords):
        assert password not in text
    return response


def patch(client: FlaskClient, body: dict[str, Any], path: str = ALICE) -> dict[str, Any]:
    """PATCH a user, assert 200 without secrets and return the user."""
    return assert_json(no_secrets(client.patch(path, json=body, headers=ADMIN)), 200)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- success


def test_create_returns_the_user_without_secrets(client: FlaskClient) -> None:
    """POST answers 201 with the active user; neither password nor hash is in the body."""
    create_tenant(client, "acme")
    body = {"username": "alice", "password": PASSWORD, "claims": {"plan": "pro"}}
    r = no_secrets(client.post(USERS, json=body, headers=ADMIN))
    assert "password" not in r.get_data(as_text=True)
    assert assert_json(r, 201) == {
        "tenant_id": "acme",
        "username": "alice",
        "status": "active",
        "claims": {"plan": "pro"},
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }


def test_create_stores_an_argon2id_hash(client: FlaskClient, services: Any) -> None:
    """The stored password is an argon2id hash of the password (never the password)."""
    create_tenant(client, "acme")
    r = client.post(USERS, json={"username": "bob", "password": PASSWORD}, headers=ADMIN)
    assert assert_json(r, 201)["claims"] == {}
    with services.storage.transaction() as tx:
        stored = tx.users.get("acme", "bob")
    assert stored.password_hash.startswith("$argon2id$")
    assert services.passwords.verify(stored.password_hash, PASSWORD)


@pytest.mark.usefixtures("acme")
def test_show_and_list(client: FlaskClient) -> None:
    """GET one user and GET the list answer the user's public fields only."""
    shown = assert_json(no_secrets(client.get(ALICE, headers=ADMIN)), 200)
    assert shown.keys() == USER_FIELDS
    assert shown["claims"] == {"plan": "pro"}
    listing = assert_json(no_secrets(client.get(USERS, headers=ADMIN)), 200)
    assert listing == {"items": [shown], "next_cursor": None}


@pytest.mark.usefixtures("acme")
def test_list_pages_through_every_user_once(client: FlaskClient) -> None:
    """limit=2 pages over 5 users follow next_cursor and yield each username once, sorted."""
    names = ["émile", "Zoe", "bob", "carol"]
    for name in names:
        body = {"username": name, "password": PASSWORD}
        assert_json(client.post(USERS, json=body, headers=ADMIN), 201)
    seen: list[str] = []
    query: dict[str, Any] = {"limit": 2}
    while True:
        page = assert_json(client.get(USERS, query_string=query, headers=ADMIN), 200)
        seen.extend(u["username"] for u in page["items"])
        if page["next_cursor"] is None:
            break
        query = {"limit": 2, "cursor": page["next_cursor"]}
    assert sorted(seen) == sorted([*names, "alice"])
    assert len(seen) == len(set(seen)) == 5


@pytest.mark.usefixtures("acme")
def test_disable_rejects_existing_tokens_at_once(client: FlaskClient) -> None:
    """Disabling a user makes its access token 401 at /v1/verify at once; others still verify."""
    token, other = issue(client, "acme", "alice"), issue(client, "acme", "bob")
    assert verify_status(client, token) == 200
    assert patch(client, {"status": "disabled"})["status"] == "disabled"
    assert_problem(client.get("/v1/verify", headers={"Authorization": f"Bearer {token}"}), 401)
    assert verify_status(client, other) == 200
    assert assert_json(client.get(ALICE, headers=ADMIN), 200)["status"] == "disabled"


@pytest.mark.usefixtures("acme")
def test_enable_lets_new_tokens_verify(client: FlaskClient, clock: FixedClock) -> None:
    """After re-enabling, new tokens verify; the token from before the disable stays 401."""
    old = issue(client, "acme", "alice")
    patch(client, {"status": "disabled"})
    clock.advance(1)
    body = patch(client, {"status": "active"})
    assert body["status"] == "active"
    assert body["updated_at"] == datetime.fromtimestamp(NOW + 1, UTC).isoformat()
    assert verify_status(client, issue(client, "acme", "alice")) == 200
    assert verify_status(client, old) == 401


@pytest.mark.usefixtures("acme")
def test_password_reset_revokes_tokens(client: FlaskClient, services: Any) -> None:
    """PATCH with a new password re-hashes it and revokes the user's tokens."""
    token = issue(client, "acme", "alice")
    assert patch(client, {"password": NEW_PASSWORD})["status"] == "active"
    assert verify_status(client, token) == 401
    with services.storage.transaction() as tx:
        stored = tx.users.get("acme", "alice")
    assert services.passwords.verify(stored.password_hash, NEW_PASSWORD)
    assert not services.passwords.verify(stored.password_hash, PASSWORD)


@pytest.mark.usefixtures("acme")
def test_claims_patch_replaces_claims_and_keeps_tokens(client: FlaskClient) -> None:
    """PATCH claims replaces them; existing tokens stay valid; an empty PATCH changes nothing."""
    token = issue(client, "acme", "alice")
    assert patch(client, {"claims": {"plan": "free", "n": 1}})["claims"] == {"plan": "free", "n": 1}
    assert verify_status(client, token) == 200
    assert patch(client, {})["claims"] == {"plan": "free", "n": 1}


@pytest.mark.usefixtures("acme")
def test_delete_is_204_without_content_and_revokes(client: FlaskClient) -> None:
    """DELETE answers 204 with no body or Content-Type, revokes tokens; the user is gone."""
    token = issue(client, "acme", "alice")
    r = client.delete(ALICE, headers=ADMIN)
    assert r.status_code == 204
    assert r.get_data() == b""
    assert "Content-Type" not in r.headers
    assert verify_status(client, token) == 401
    assert_problem(client.get(ALICE, headers=ADMIN), 404, "not_found")
    assert_problem(client.delete(ALICE, headers=ADMIN), 404, "not_found")


# --------------------------------------------------------------------------- isolation


@pytest.mark.usefixtures("acme")
def test_other_tenant_cannot_see_or_touch_users(client: FlaskClient) -> None:
    """Tenant B lists no users of A and gets 404 for A's user on every route."""
    create_tenant(client, "beta")
    beta = f"{TENANTS}/beta/users"
    assert assert_json(client.get(beta, headers=ADMIN), 200) == {"items": [], "next_cursor": None}
    assert_problem(client.get(f"{beta}/alice", headers=ADMIN), 404)
    assert_problem(client.patch(f"{beta}/alice", json={"status": "disabled"}, headers=ADMIN), 404)
    assert_problem(client.delete(f"{beta}/alice", headers=ADMIN), 404)
    assert assert_json(client.get(ALICE, headers=ADMIN), 200)["status"] == "active"
    # the same username in B is another user
    body = {"username": "alice", "password": NEW_PASSWORD}
    assert assert_json(client.post(beta, json=body, headers=ADMIN), 201)["tenant_id"] == "beta"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.usefixtures("acme")
def test_routes_require_the_admin_token(
    client: FlaskClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """No token and a wrong token are 401 problems; two Authorization headers are 400."""
    assert_problem(client.open(path, method=method, json=body), 401)
    wrong = {"Authorization": "Bearer not-the-admin-token"}
    assert_problem(client.open(path, method=method, json=body, headers=wrong), 401)
    assert_problem(client.open(path, method=method, json=body, headers=TWO_ADMINS), 400)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.usefixtures("acme")
def test_unknown_or_deleted_tenant_is_not_found(
    client: FlaskClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """Every route is 404 for an unknown tenant, an impossible id and a deleted tenant."""
    for tenant in ("nobody", "NOT_AN_ID"):
        other = path.replace("/acme/", f"/{tenant}/")
        assert_problem(client.open(other, method=method, json=body, headers=ADMIN), 404)
    assert client.delete(f"{TENANTS}/acme", headers=ADMIN).status_code == 204
    assert_problem(client.open(path, method=method, json=body, headers=ADMIN), 404)


@pytest.mark.parametrize("path", [f"{USERS}/ghost", f"{USERS}/a%00b", f"{USERS}/a%0Ab"])
@pytest.mark.usefixtures("acme")
def test_unknown_user_is_not_found(client: FlaskClient, path: str) -> None:
    """GET, PATCH and DELETE of a user that does not (or cannot) exist are 404 problems."""
    assert_problem(client.get(path, headers=ADMIN), 404, "not_found")
    assert_problem(client.patch(path, json={"status": "disabled"}, headers=ADMIN), 404)
    assert_problem(client.delete(path, headers=ADMIN), 404)


@pytest.mark.usefixtures("acme")
def test_duplicate_username_is_a_conflict(client: FlaskClient) -> None:
    """Creating a username that exists in the tenant is a 409 problem."""
    r = client.post(USERS, json={"username": "alice", "password": NEW_PASSWORD}, headers=ADMIN)
    assert_problem(no_secrets(r), 409, "conflict")


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12 characters long (got 5)"),
        ("p" * 257, "at most 256 characters long (got 257)"),
        ("            ", "only of whitespace"),
        ("BOB-THE-BUILDER", "same as the username"),
    ],
    ids=["short", "long", "blank", "username"],
)
@pytest.mark.usefixtures("acme")
def test_password_policy_is_422_saying_what_is_wrong(
    client: FlaskClient, password: str, fragment: str
) -> None:
    """A weak password is a 422 whose detail names the rule and never echoes the password."""
    body = {"username": "bob-the-builder", "password": password}
    r = no_secrets(client.post(USERS, json=body, headers=ADMIN), password)
    problem = assert_problem(r, 422, "invalid_request")
    assert fragment in problem["detail"]
    assert any(fragment in message for message in problem["errors"]["password"])
    assert_problem(client.get(f"{USERS}/bob-the-builder", headers=ADMIN), 404)


@pytest.mark.usefixtures("acme")
def test_weak_password_reset_is_422_and_keeps_tokens(client: FlaskClient) -> None:
    """A PATCH to a weak password is a 422 naming the rule; the user's tokens stay valid."""
    token = issue(client, "acme", "alice")
    r = no_secrets(client.patch(ALICE, json={"password": "ALICE"}, headers=ADMIN), "ALICE")
    assert "at least 12 characters" in assert_problem(r, 422)["detail"]
    assert verify_status(client, token) == 200


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"username": "bob"}, "password"),
        ({"password": PASSWORD}, "username"),
        ({"username": "bob", "password": PASSWORD, "admin": True}, "admin"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "u" * 256, "password": PASSWORD}, "username"),
        ({"username": "bob", "password": 12345678901234}, "password"),
        ({"username": "bob", "password": PASSWORD, "claims": []}, "claims"),
        ({"username": "bob", "password": "p" * 4097}, "password"),
    ],
    ids=["no-password", "no-username", "unknown", "empty", "long", "int", "claims", "huge"],
)
@pytest.mark.usefixtures("acme")
def test_create_schema_errors_say_where(
    client: FlaskClient, body: dict[str, Any], where: str
) -> None:
    """Schema violations are 422 problems whose errors name the field."""
    problem = assert_problem(no_secrets(client.post(USERS, json=body, headers=ADMIN)), 422)
    assert where in problem["errors"]["json"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"username": "a\nb"}, "control characters"),
        ({"username": "a/b"}, "'/'"),
        ({"username": "e\u0301"}, "NFC"),
        ({"username": "bob", "claims": {"sub": "root"}}, "reserved claims: sub"),
        ({"username": "bob", "claims": {"x": "y" * 2100}}, "at most 2048 bytes"),
    ],
    ids=["control", "slash", "nfd", "reserved", "big-claims"],
)
@pytest.mark.usefixtures("acme")
def test_domain_validation_is_422_with_a_clear_detail(
    client: FlaskClient, body: dict[str, Any], fragment: str
) -> None:
    """Username and claims rules are 422 problems whose detail says what is wrong."""
    r = client.post(USERS, json={"password": PASSWORD, **body}, headers=ADMIN)
    assert fragment in assert_problem(r, 422, "invalid_request")["detail"]


@pytest.mark.parametrize(
    "body",
    [{"status": "deleted"}, {"status": None}, {"claims": {"iss": "x"}}, {"username": "x"}],
    ids=["status", "null", "reserved", "unknown"],
)
@pytest.mark.usefixtures("acme")
def test_invalid_patch_is_422_and_changes_nothing(
    client: FlaskClient, body: dict[str, Any]
) -> None:
    """An invalid PATCH is a 422 problem and leaves the user as it was."""
    before = assert_json(client.get(ALICE, headers=ADMIN), 200)
    assert_problem(client.patch(ALICE, json=body, headers=ADMIN), 422)
    assert assert_json(client.get(ALICE, headers=ADMIN), 200) == before


@pytest.mark.parametrize(
    "query",
    [{"limit": 0}, {"limit": 501}, {"limit": "x"}, {"cursor": "!!!"}, {"sort": "name"}],
    ids=["zero", "over", "text", "cursor", "unknown"],
)
@pytest.mark.usefixtures("acme")
def test_invalid_list_query_is_422(client: FlaskClient, query: dict[str, Any]) -> None:
    """A bad limit, a malformed cursor or an unknown parameter is a 422 problem."""
    assert_problem(client.get(USERS, query_string=query, headers=ADMIN), 422)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.usefixtures("acme")
def test_malformed_or_huge_bodies(client: FlaskClient, method: str) -> None:
    """Malformed JSON is a 400 problem and a body over 64 KiB a 413 problem."""
    path = USERS if method == "POST" else ALICE
    assert_problem(client.open(path, method=method, headers=ADMIN, **BAD_JSON), 400)
    assert_problem(client.open(path, method=method, headers=ADMIN, **HUGE_JSON), 413)


@pytest.mark.usefixtures("acme")
def test_admin_cannot_mint_tokens_for_a_disabled_user(client: FlaskClient) -> None:
    """POST .../tokens for a disabled user is a 409 saying so; after enabling it works."""
    patch(client, {"status": "disabled"})
    r = client.post(f"{TENANTS}/acme/tokens", json={"sub": "alice"}, headers=ADMIN)
    assert "disabled" in assert_problem(r, 409)["detail"]
    patch(client, {"status": "active"})
    assert verify_status(client, issue(client, "acme", "alice")) == 200


@pytest.mark.usefixtures("acme")
def test_recreated_tenant_starts_without_the_old_accounts(client: FlaskClient) -> None:
    """Deleting a tenant erases its users and clients: a tenant re-created with the same id
    has none, so no old password or client secret works in it."""
    body = {"name": "svc", "scopes": ["read"], "grant_types": ["client_credentials"]}
    created = assert_json(client.post(f"{TENANTS}/acme/clients", json=body, headers=ADMIN), 201)
    assert client.delete(f"{TENANTS}/acme", headers=ADMIN).status_code == 204
    create_tenant(client, "acme")
    assert_problem(client.get(ALICE, headers=ADMIN), 404)
    clients = f"{TENANTS}/acme/clients/{created['client_id']}"
    assert_problem(client.get(clients, headers=ADMIN), 404)
    assert assert_json(client.get(USERS, headers=ADMIN), 200)["items"] == []
