"""Admin API (/v1/admin/tenants, rotate, tokens) over HTTP, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient

from tenantauth.domain.tokens import MAX_CUSTOM_CLAIMS_BYTES, RESERVED_CLAIMS
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    claims_for,
    create_tenant,
    issue,
    new_secret,
    sign,
    verify_status,
)
from tests.support import ADMIN_TOKEN, NOW, FixedClock, tenant_issuer

ACME = f"{TENANTS}/acme"
#: Every admin route with a body that passes validation when the tenant "acme" exists.
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", TENANTS, {"id": "newco", "name": "New Co"}),
    ("GET", TENANTS, None),
    ("GET", ACME, None),
    ("PATCH", ACME, {"name": "Renamed"}),
    ("DELETE", ACME, None),
    ("POST", f"{ACME}/rotate", {}),
    ("POST", f"{ACME}/tokens", {"sub": "user-42"}),
]
ROUTE_IDS = [f"{m} {p}" for m, p, _ in ROUTES]
#: Routes that name one tenant, with a valid body.
TENANT_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "", {"name": "Renamed"}),
    ("DELETE", "", None),
    ("POST", "/rotate", {}),
    ("POST", "/tokens", {"sub": "user-42"}),
]
TENANT_ROUTE_IDS = [f"{m} {{id}}{s}" for m, s, _ in TENANT_ROUTES]
BODY_ROUTES = [
    ("POST", TENANTS),
    ("PATCH", ACME),
    ("POST", f"{ACME}/rotate"),
    ("POST", f"{ACME}/tokens"),
]
BODY_ROUTE_IDS = [f"{m} {p}" for m, p in BODY_ROUTES]
TIMESTAMP = datetime.fromtimestamp(NOW, UTC).isoformat()


@pytest.fixture
def acme(client: FlaskClient) -> dict[str, Any]:
    """The tenant 'acme', created through the API."""
    return create_tenant(client, "acme", name="Acme")


def _send(
    client: FlaskClient,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    headers: Any = None,
) -> Any:
    return client.open(path, method=method, json=body, headers=headers)


def _show(client: FlaskClient, tenant_id: str) -> Any:
    return client.get(f"{TENANTS}/{tenant_id}", headers=ADMIN)


# --------------------------------------------------------------------------- success


def test_create_returns_the_tenant_with_defaults(client: FlaskClient) -> None:
    """POST /v1/admin/tenants answers 201 with the new active tenant at key version 1."""
    r = client.post(TENANTS, json={"id": "acme", "name": "Acme Corp"}, headers=ADMIN)
    body = assert_json(r, 201)
    assert body == {
        "id": "acme",
        "name": "Acme Corp",
        "status": "active",
        "alg": "HS256",
        "kid": "acme",  # HS256 tokens name the tenant alone, as before key pairs
        "key_version": 1,
        "access_token_ttl": 900,
        "max_token_ttl": 86_400,
        "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
        "rotated_at": TIMESTAMP,
    }
    assert assert_json(_show(client, "acme"), 200) == body


def test_create_accepts_boundary_ids_and_ttls(client: FlaskClient) -> None:
    """Ids of 2 and 63 characters with inner dashes and explicit TTLs are accepted."""
    for tenant_id in ("a1", "a" + "-b" * 31):
        assert create_tenant(client, tenant_id)["id"] == tenant_id
    body = create_tenant(client, "ttl-co", access_token_ttl=60, max_token_ttl=120)
    assert (body["access_token_ttl"], body["max_token_ttl"]) == (60, 120)


def test_get_one_shows_the_tenant(client: FlaskClient, acme: dict[str, Any]) -> None:
    """GET /v1/admin/tenants/{id} answers 200 with the same tenant the create returned."""
    assert assert_json(_show(client, "acme"), 200) == acme


def test_list_pages_through_every_tenant_once_in_id_order(client: FlaskClient) -> None:
    """limit=3 pages over 7 tenants follow next_cursor and yield each id once, sorted."""
    ids = [f"t{n}-co" for n in (5, 1, 7, 3, 2, 6, 4)]
    for tenant_id in ids:
        create_tenant(client, tenant_id)
    seen: list[str] = []
    pages = []
    query: dict[str, Any] = {"limit": 3}
    while True:
        page = assert_json(client.get(TENANTS, query_string=query, headers=ADMIN), 200)
        assert page.keys() == {"items", "next_cursor"}
        pages.append(len(page["items"]))
        seen.extend(item["id"] for item in page["items"])
        if page["next_cursor"] is None:
            break
        query = {"limit": 3, "cursor": page["next_cursor"]}
    assert seen == sorted(ids)
    assert pages == [3, 3, 1]


def test_list_defaults_and_hides_deleted_tenants(client: FlaskClient) -> None:
    """Without a limit every tenant fits one page; deleted tenants are not listed."""
    for tenant_id in ("aa", "bb", "cc"):
        create_tenant(client, tenant_id)
    assert client.delete(f"{TENANTS}/bb", headers=ADMIN).status_code == 204
    page = assert_json(client.get(TENANTS, headers=ADMIN), 200)
    assert [t["id"] for t in page["items"]] == ["aa", "cc"]
    assert page["next_cursor"] is None


def test_lowercase_bearer_scheme_is_accepted(client: FlaskClient) -> None:
    """The auth scheme is case-insensitive (RFC 9110 §11.1): 'bearer <token>' works."""
    for scheme in ("bearer", "BEARER"):
        r = client.get(TENANTS, headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"})
        assert assert_json(r, 200) == {"items": [], "next_cursor": None}


def test_patch_changes_name_and_ttls(
    client: FlaskClient, acme: dict[str, Any], clock: FixedClock
) -> None:
    """PATCH answers 200 with the changed tenant, and the change persists."""
    clock.advance(60)
    r = client.patch(
        ACME, json={"name": "Acme 2", "access_token_ttl": 300, "max_token_ttl": 600}, headers=ADMIN
    )
    body = assert_json(r, 200)
    expected = {
        **acme,
        "name": "Acme 2",
        "access_token_ttl": 300,
        "max_token_ttl": 600,
        "updated_at": datetime.fromtimestamp(NOW + 60, UTC).isoformat(),
    }
    assert body == expected
    assert assert_json(_show(client, "acme"), 200) == expected
    token = issue(client, "acme")
    assert jwt.decode(token, options={"verify_signature": False})["exp"] == int(NOW + 60) + 300


def test_suspend_rejects_tokens_until_resumed(client: FlaskClient, acme: dict[str, Any]) -> None:
    """A suspended tenant's token gets 401 at /v1/verify; after resume the same token is 200."""
    token = issue(client, "acme")
    assert verify_status(client, token) == 200
    r = client.patch(ACME, json={"status": "suspended"}, headers=ADMIN)
    assert assert_json(r, 200)["status"] == "suspended"
    assert_problem(client.get("/v1/verify", headers=bearer(token)), 401, "invalid_token")
    r = client.patch(ACME, json={"status": "active"}, headers=ADMIN)
    assert assert_json(r, 200)["status"] == "active"
    assert verify_status(client, token) == 200


def test_suspended_tenant_cannot_mint_tokens(client: FlaskClient, acme: dict[str, Any]) -> None:
    """Minting a token for a suspended tenant is a 409 conflict."""
    client.patch(ACME, json={"status": "suspended"}, headers=ADMIN)
    r = client.post(f"{ACME}/tokens", json={"sub": "u"}, headers=ADMIN)
    assert_problem(r, 409, "conflict")


def test_delete_revokes_and_recreate_issues_a_new_secret(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """DELETE is 204 with no body; old tokens stay 401 even after the id is created again."""
    old = issue(client, "acme")
    r = client.delete(ACME, headers=ADMIN)
    assert r.status_code == 204
    assert r.get_data() == b""
    assert "Content-Type" not in r.headers
    assert verify_status(client, old) == 401
    assert_problem(_show(client, "acme"), 404, "not_found")
    again = create_tenant(client, "acme", name="Acme again")
    assert again["status"] == "active"
    assert verify_status(client, old) == 401
    assert verify_status(client, issue(client, "acme")) == 200


def test_rotate_returns_the_new_key_version(
    client: FlaskClient, acme: dict[str, Any], clock: FixedClock
) -> None:
    """Rotate answers 200 {id, key_version, alg, kid, rotated_at, offline bound}, one
    version higher each time; an HS256 secret was never published, so no offline bound."""
    for version, body in ((2, None), (3, {})):
        clock.advance(10)
        r = client.post(f"{ACME}/rotate", json=body, headers=ADMIN)
        assert assert_json(r, 200) == {
            "id": "acme",
            "key_version": version,
            "alg": "HS256",
            "kid": "acme",
            "rotated_at": datetime.fromtimestamp(clock.now(), UTC).isoformat(),
            "offline_verifiers_may_accept_until": None,
        }
    assert assert_json(_show(client, "acme"), 200)["key_version"] == 3


def test_rotate_revokes_old_tokens_at_once(client: FlaskClient, acme: dict[str, Any]) -> None:
    """After rotate returns, the old token is 401 and a freshly minted one is 200."""
    old = issue(client, "acme")
    assert verify_status(client, old) == 200
    assert client.post(f"{ACME}/rotate", headers=ADMIN).status_code == 200
    assert verify_status(client, old) == 401
    assert verify_status(client, issue(client, "acme")) == 200


def test_imported_secret_verifies_tokens_signed_elsewhere(
    client: FlaskClient, clock: FixedClock
) -> None:
    """A token signed by another system with the imported secret is accepted by /v1/verify."""
    raw, text = new_secret()
    create_tenant(client, "legacy", secret=text)
    claims = claims_for("legacy", clock.now(), aud="orders", scope="read")
    token = sign(raw, claims, "legacy")
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "legacy"}
    r = client.get("/v1/verify", headers=bearer(token))
    assert assert_json(r, 200) == {"active": True, "claims": claims}
    assert r.headers["X-Tenant-Id"] == "legacy"


def test_issued_tokens_are_signed_with_the_imported_secret(
    client: FlaskClient, clock: FixedClock
) -> None:
    """POST tokens answers 201 RFC 6749 §5.1 JSON; the token decodes with the imported secret."""
    raw, text = new_secret()
    create_tenant(client, "legacy", secret=text)
    r = client.post(
        f"{TENANTS}/legacy/tokens",
        json={
            "sub": "user-7",
            "ttl": 120,
            "aud": ["orders", "billing"],
            "scope": "read write",
            "claims": {"role": "admin", "org": {"id": 7}},
        },
        headers=ADMIN,
    )
    body = assert_json(r, 201)
    assert body.keys() == {"access_token", "token_type", "expires_in"}
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 120)
    assert r.headers["Cache-Control"] == "no-store"
    token = body["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": "legacy"}
    claims = jwt.decode(
        token,
        raw,
        algorithms=["HS256"],
        audience="billing",
        issuer=tenant_issuer("legacy"),
        leeway=10**9,
    )
    now = int(clock.now())
    assert claims == {
        "iss": tenant_issuer("legacy"),
        "sub": "user-7",
        "aud": ["orders", "billing"],
        "exp": now + 120,
        "iat": now,
        "nbf": now,
        "jti": claims["jti"],
        "tid": "legacy",
        "scope": "read write",
        "role": "admin",
        "org": {"id": 7},
    }
    assert len(claims["jti"]) >= 16
    assert verify_status(client, token) == 200


def test_rotate_can_import_a_secret(client: FlaskClient, acme: dict[str, Any]) -> None:
    """Rotating to an imported secret makes tokens signed with it verify, and old ones fail."""
    old = issue(client, "acme")
    raw, text = new_secret()
    r = client.post(f"{ACME}/rotate", json={"secret": text}, headers=ADMIN)
    assert assert_json(r, 200)["key_version"] == 2
    assert verify_status(client, old) == 401
    new = issue(client, "acme")
    assert jwt.decode(new, raw, algorithms=["HS256"], audience="tenantauth", leeway=10**9)


def test_no_response_ever_contains_the_secret(client: FlaskClient) -> None:
    """No admin success response mentions a secret or contains the imported one."""
    _, text = new_secret()
    _, rotated = new_secret()
    responses = [
        client.post(TENANTS, json={"id": "acme", "name": "A", "secret": text}, headers=ADMIN),
        client.get(TENANTS, headers=ADMIN),
        _show(client, "acme"),
        client.patch(ACME, json={"name": "B"}, headers=ADMIN),
        client.post(f"{ACME}/tokens", json={"sub": "u"}, headers=ADMIN),
        client.post(f"{ACME}/rotate", json={"secret": rotated}, headers=ADMIN),
        client.delete(ACME, headers=ADMIN),
    ]
    for r in responses:
        assert r.status_code < 300, r.get_data(as_text=True)
        payload = r.get_data(as_text=True) + json.dumps(dict(r.headers))
        for needle in (text, text.rstrip("="), rotated, rotated.rstrip("=")):
            assert needle not in payload
        assert "secret" not in payload.lower()


# --------------------------------------------------------------------------- 401


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        f"Bearer {ADMIN_TOKEN[:-1]}x",
        f"Bearer {ADMIN_TOKEN}x",
        "Bearer " + "A" * 43,
        f"Basic {base64.b64encode(f'admin:{ADMIN_TOKEN}'.encode()).decode()}",
        f"Token {ADMIN_TOKEN}",
        "Bearer",
        f"Bearer  {ADMIN_TOKEN} trailing",
        ADMIN_TOKEN,
    ],
    ids=[
        "missing",
        "wrong-token",
        "token-plus-char",
        "random-token",
        "basic-scheme",
        "other-scheme",
        "no-credentials",
        "extra-words",
        "no-scheme",
    ],
)
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_admin_routes_refuse_missing_wrong_or_malformed_credentials(
    client: FlaskClient,
    acme: dict[str, Any],
    route: tuple[str, str, dict[str, Any] | None],
    authorization: str | None,
) -> None:
    """Each admin route answers 401 problem with WWW-Authenticate and changes nothing."""
    headers = {} if authorization is None else {"Authorization": authorization}
    r = _send(client, *route, headers)
    problem = assert_problem(r, 401, "unauthenticated")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tenantauth"'
    assert ADMIN_TOKEN not in json.dumps(problem)
    assert assert_json(client.get(TENANTS, headers=ADMIN), 200)["items"] == [acme]


# --------------------------------------------------------------------------- 400


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=ROUTE_IDS)
def test_two_authorization_headers_are_a_bad_request(
    client: FlaskClient,
    acme: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    """Two Authorization headers, even both valid, are a 400 problem and change nothing."""
    headers = [("Authorization", f"Bearer {ADMIN_TOKEN}")] * 2
    assert_problem(_send(client, method, path, body, headers), 400, "invalid_request")
    assert assert_json(client.get(TENANTS, headers=ADMIN), 200)["items"] == [acme]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES, ids=BODY_ROUTE_IDS)
@pytest.mark.parametrize("payload", ['{"id": "x",', "{'id': 'x'}", "\xff"], ids=str)
def test_malformed_json_is_a_bad_request(
    client: FlaskClient, acme: dict[str, Any], method: str, path: str, payload: str
) -> None:
    """A body that is not JSON is a 400 problem on every route that takes a body."""
    r = client.open(
        path, method=method, data=payload, content_type="application/json", headers=ADMIN
    )
    assert_problem(r, 400, "invalid_request")


def test_deeply_nested_json_is_a_bad_request(client: FlaskClient) -> None:
    """JSON nested 10,000+ levels deep (under the size cap) is a 400 problem, not a 500."""
    for payload in ("[" * 20_000 + "]" * 20_000, '{"a":' * 10_000 + "1" + "}" * 10_000):
        assert len(payload) < 64 * 1024
        r = client.post(TENANTS, data=payload, content_type="application/json", headers=ADMIN)
        assert_problem(r, 400, "invalid_request")


# --------------------------------------------------------------------------- 404


@pytest.mark.parametrize(("method", "suffix", "body"), TENANT_ROUTES, ids=TENANT_ROUTE_IDS)
def test_unknown_tenant_is_not_found(
    client: FlaskClient, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    """Every route naming an unknown tenant answers 404 problem."""
    r = _send(client, method, f"{TENANTS}/nobody{suffix}", body, ADMIN)
    assert "nobody" in assert_problem(r, 404, "not_found")["detail"]


@pytest.mark.parametrize(("method", "suffix", "body"), TENANT_ROUTES, ids=TENANT_ROUTE_IDS)
def test_deleted_tenant_is_not_found(
    client: FlaskClient,
    acme: dict[str, Any],
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
) -> None:
    """Every route naming a deleted tenant answers 404 problem."""
    assert client.delete(ACME, headers=ADMIN).status_code == 204
    assert_problem(_send(client, method, f"{ACME}{suffix}", body, ADMIN), 404, "not_found")


def test_unknown_url_is_a_not_found_problem(client: FlaskClient) -> None:
    """A URL no route matches is a 404 problem too (werkzeug's error, reshaped)."""
    assert_problem(client.get("/v1/admin/nothing-here", headers=ADMIN), 404, "not_found")


# --------------------------------------------------------------------------- 409


def test_duplicate_id_is_a_conflict(client: FlaskClient, acme: dict[str, Any]) -> None:
    """Creating an id that exists is a 409 problem and leaves the tenant as it was."""
    r = client.post(TENANTS, json={"id": "acme", "name": "Other"}, headers=ADMIN)
    assert "acme" in assert_problem(r, 409, "conflict")["detail"]
    assert assert_json(_show(client, "acme"), 200) == acme


def test_rotate_to_the_current_secret_is_a_conflict(client: FlaskClient) -> None:
    """Rotating to the imported secret already in use is a 409: it would revoke nothing."""
    raw, text = new_secret()
    create_tenant(client, "legacy", secret=text)
    for same in (text, text.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")):
        r = client.post(f"{TENANTS}/legacy/rotate", json={"secret": same}, headers=ADMIN)
        assert_problem(r, 409, "conflict")
    assert assert_json(_show(client, "legacy"), 200)["key_version"] == 1


# --------------------------------------------------------------------------- 422

_SHORT_SECRET = base64.urlsafe_b64encode(b"k" * 31).decode()
_BIG_CLAIMS = {"blob": "x" * MAX_CUSTOM_CLAIMS_BYTES}
INVALID_BODIES: list[tuple[str, str, str, Any]] = [
    ("create-unknown-field", "POST", TENANTS, {"id": "newco", "name": "N", "plan": "gold"}),
    ("create-id-uppercase", "POST", TENANTS, {"id": "NewCo", "name": "N"}),
    ("create-id-too-long", "POST", TENANTS, {"id": "a" * 64, "name": "N"}),
    ("create-id-leading-dash", "POST", TENANTS, {"id": "-newco", "name": "N"}),
    ("create-id-one-char", "POST", TENANTS, {"id": "n", "name": "N"}),
    ("create-id-underscore", "POST", TENANTS, {"id": "new_co", "name": "N"}),
    ("create-id-trailing-newline", "POST", TENANTS, {"id": "newco\n", "name": "N"}),
    ("create-id-not-string", "POST", TENANTS, {"id": 42, "name": "N"}),
    ("create-id-missing", "POST", TENANTS, {"name": "N"}),
    ("create-name-too-long", "POST", TENANTS, {"id": "newco", "name": "N" * 201}),
    ("create-name-blank", "POST", TENANTS, {"id": "newco", "name": "   "}),
    ("create-secret-short", "POST", TENANTS, {"id": "newco", "name": "N", "secret": _SHORT_SECRET}),
    ("create-secret-not-b64", "POST", TENANTS, {"id": "newco", "name": "N", "secret": "a+b/" * 12}),
    ("create-ttl-string", "POST", TENANTS, {"id": "newco", "name": "N", "access_token_ttl": "60"}),
    (
        "create-ttl-above-max",
        "POST",
        TENANTS,
        {"id": "n2", "name": "N", "access_token_ttl": 90_000},
    ),
    ("create-body-array", "POST", TENANTS, [{"id": "newco", "name": "N"}]),
    ("patch-status-deleted", "PATCH", ACME, {"status": "deleted"}),
    ("patch-status-unknown", "PATCH", ACME, {"status": "paused"}),
    ("patch-unknown-field", "PATCH", ACME, {"id": "other"}),
    ("patch-name-too-long", "PATCH", ACME, {"name": "N" * 201}),
    ("patch-ttl-float", "PATCH", ACME, {"access_token_ttl": 60.5}),
    ("rotate-secret-short", "POST", f"{ACME}/rotate", {"secret": _SHORT_SECRET}),
    ("rotate-unknown-field", "POST", f"{ACME}/rotate", {"key": "x"}),
    ("tokens-ttl-string", "POST", f"{ACME}/tokens", {"sub": "u", "ttl": "900"}),
    ("tokens-ttl-float", "POST", f"{ACME}/tokens", {"sub": "u", "ttl": 900.25}),
    ("tokens-ttl-fraction", "POST", f"{ACME}/tokens", {"sub": "u", "ttl": 90.5}),
    ("tokens-ttl-bool", "POST", f"{ACME}/tokens", {"sub": "u", "ttl": True}),
    ("tokens-ttl-zero", "POST", f"{ACME}/tokens", {"sub": "u", "ttl": 0}),
    ("tokens-ttl-over-max", "POST", f"{ACME}/tokens", {"sub": "u", "ttl": 86_401}),
    ("tokens-sub-missing", "POST", f"{ACME}/tokens", {"ttl": 60}),
    ("tokens-sub-empty", "POST", f"{ACME}/tokens", {"sub": ""}),
    ("tokens-unknown-field", "POST", f"{ACME}/tokens", {"sub": "u", "iss": "x"}),
    ("tokens-aud-not-string", "POST", f"{ACME}/tokens", {"sub": "u", "aud": 7}),
    ("tokens-claims-not-object", "POST", f"{ACME}/tokens", {"sub": "u", "claims": ["a"]}),
    ("tokens-claims-oversized", "POST", f"{ACME}/tokens", {"sub": "u", "claims": _BIG_CLAIMS}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [case[1:] for case in INVALID_BODIES],
    ids=[case[0] for case in INVALID_BODIES],
)
def test_invalid_body_is_unprocessable(
    client: FlaskClient, acme: dict[str, Any], method: str, path: str, body: Any
) -> None:
    """A well-formed body that fails validation is a 422 problem and changes nothing."""
    assert_problem(_send(client, method, path, body, ADMIN), 422, "invalid_request")
    assert assert_json(client.get(TENANTS, headers=ADMIN), 200)["items"] == [acme]


@pytest.mark.parametrize("claim", sorted(RESERVED_CLAIMS))
def test_reserved_claims_cannot_be_overridden(
    client: FlaskClient, acme: dict[str, Any], claim: str
) -> None:
    """Setting a reserved claim through `claims` is a 422 problem naming it."""
    r = client.post(f"{ACME}/tokens", json={"sub": "u", "claims": {claim: "x"}}, headers=ADMIN)
    assert claim in assert_problem(r, 422, "invalid_request")["detail"]


def test_schema_errors_say_where(client: FlaskClient) -> None:
    """A schema failure lists the offending field under `errors`."""
    r = client.post(TENANTS, json={"id": "Bad!", "name": "N", "extra": 1}, headers=ADMIN)
    problem = assert_problem(r, 422, "invalid_request")
    assert set(problem["errors"]["json"]) == {"id", "extra"}


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": -1},
        {"limit": "ten"},
        {"cursor": "!!!"},
        {"cursor": "not a cursor"},
        {"cursor": "_w"},
        {"cursor": ""},
        {"foo": "1"},
        {"limit": 3, "offset": 3},
    ],
    ids=str,
)
def test_invalid_list_query_is_unprocessable(
    client: FlaskClient, acme: dict[str, Any], query: dict[str, Any]
) -> None:
    """A bad limit, a cursor we never issued or an unknown query parameter is a 422 problem."""
    r = client.get(TENANTS, query_string=query, headers=ADMIN)
    assert_problem(r, 422, "invalid_request")


def test_list_limit_bounds_are_inclusive(client: FlaskClient, acme: dict[str, Any]) -> None:
    """limit=1 and limit=500 are both accepted."""
    for limit in (1, 500):
        r = client.get(TENANTS, query_string={"limit": limit}, headers=ADMIN)
        assert [t["id"] for t in assert_json(r, 200)["items"]] == ["acme"]


# --------------------------------------------------------------------------- 405, 413


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", TENANTS, {"GET", "HEAD", "OPTIONS", "POST"}),
        ("DELETE", TENANTS, {"GET", "HEAD", "OPTIONS", "POST"}),
        ("PUT", ACME, {"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"}),
        ("POST", ACME, {"GET", "HEAD", "OPTIONS", "PATCH", "DELETE"}),
        ("GET", f"{ACME}/rotate", {"OPTIONS", "POST"}),
        ("GET", f"{ACME}/tokens", {"OPTIONS", "POST"}),
    ],
    # Sets print in a per-process order: ids must be stable for pytest-xdist's workers.
    ids=lambda value: ",".join(sorted(value)) if isinstance(value, set) else str(value),
)
def test_wrong_method_is_a_problem_with_allow(
    client: FlaskClient, method: str, path: str, allowed: set[str]
) -> None:
    """A method the route lacks is a 405 problem whose Allow header lists the right methods."""
    r = client.open(path, method=method, headers=ADMIN)
    assert_problem(r, 405, "method_not_allowed")
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allowed


def test_body_over_64_kib_is_too_large(client: FlaskClient) -> None:
    """A body over 64 KiB is a 413 problem, and nothing is created."""
    payload = json.dumps({"id": "big", "name": "B", "pad": "x" * (64 * 1024)})
    r = client.post(TENANTS, data=payload, content_type="application/json", headers=ADMIN)
    assert_problem(r, 413, "request_entity_too_large")
    assert_problem(_show(client, "big"), 404)


def test_problem_echoes_a_sane_request_id(client: FlaskClient) -> None:
    """A caller's well-formed X-Request-Id is echoed in the header and the problem body."""
    r = client.get(f"{TENANTS}/nobody", headers={**ADMIN, "X-Request-Id": "req-123.abc"})
    assert assert_problem(r, 404)["request_id"] == "req-123.abc"
    r = client.get(f"{TENANTS}/nobody", headers={**ADMIN, "X-Request-Id": "bad id\u00e9"})
    assert assert_problem(r, 404)["request_id"] != "bad id\u00e9"
