"""The OAuth 2.0 endpoints over HTTP on both backends: token (RFC 6749), revoke (RFC 7009),
introspect (RFC 7662), metadata (RFC 8414), RFC 6749 §5.2 error bodies and brute-force 429s."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenantauth.domain.services import Services
from tests.integration.helpers import ADMIN, TENANTS, bearer, create_tenant, issue
from tests.oauth_accounts import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME, add_client, add_user
from tests.support import ISSUER, FixedClock, tenant_issuer

BASE = "/v1/tenants/acme"
TOKEN, REVOKE, INTROSPECT = f"{BASE}/token", f"{BASE}/revoke", f"{BASE}/introspect"
#: A client id and secret that need form-urlencoding in HTTP Basic (RFC 6749 §2.3.1).
ODD_ID, ODD_SECRET = "odd:id é", "s3cret:+/ with spaces"


def basic(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
    """Return an HTTP Basic header with form-urlencoded id and secret (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


POST_AUTH = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


@pytest.fixture(autouse=True)
def _accounts(client: FlaskClient, services: Services) -> None:
    """Tenant acme with client tac_app (read write, every grant), user alice, and client odd."""
    create_tenant(client, "acme")
    add_client(services, "acme")
    add_client(services, "acme", ODD_ID, ODD_SECRET, grant_types=["client_credentials"])
    add_user(services, "acme", claims={"dept": "ops"})


def post(client: FlaskClient, path: str, form: dict[str, str], **kw: Any) -> TestResponse:
    """POST a form."""
    return client.post(path, data=form, **kw)


def ok(response: TestResponse) -> dict[str, Any]:
    """Assert a 200 application/json OAuth response that is not cached; return its body."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    return response.get_json()  # type: ignore[no-any-return]


def oauth_error(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    """Assert an RFC 6749 §5.2 error: status, JSON ``error``/``error_description``, no-store."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    body = response.get_json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str)
    assert body["error_description"]
    assert body["status"] == status
    if error == "invalid_client":
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="tenantauth"')
    return body  # type: ignore[no-any-return]


def verified_claims(client: FlaskClient, token: str) -> dict[str, Any]:
    """Assert ``token`` verifies at /v1/verify; return its claims."""
    r = client.get("/v1/verify", headers=bearer(token))
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["claims"]  # type: ignore[no-any-return]


def login(client: FlaskClient, **extra: str) -> dict[str, Any]:
    """Password grant for alice with Basic client authentication."""
    form = {"grant_type": "password", "username": USERNAME, "password": PASSWORD, **extra}
    return ok(post(client, TOKEN, form, headers=basic()))


# --------------------------------------------------------------------------- token endpoint


def test_client_credentials_with_basic(client: FlaskClient) -> None:
    """§4.4 with client_secret_basic: a Bearer token that verifies at /v1/verify, no refresh."""
    body = ok(post(client, TOKEN, {"grant_type": "client_credentials"}, headers=basic()))
    assert body.keys() == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 900, "read write")
    claims = verified_claims(client, body["access_token"])
    assert (claims["sub"], claims["client_id"], claims["tid"]) == (CLIENT_ID, CLIENT_ID, "acme")


def test_client_credentials_with_post(client: FlaskClient) -> None:
    """client_secret_post authenticates as well."""
    body = ok(post(client, TOKEN, {"grant_type": "client_credentials", **POST_AUTH}))
    assert body["scope"] == "read write"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("delete", f"/v1/admin/tenants/acme/clients/{CLIENT_ID}", None),
        ("post", f"/v1/admin/tenants/acme/clients/{CLIENT_ID}/rotate-secret", {}),
        ("patch", "/v1/admin/tenants/acme", {"status": "suspended"}),
        ("delete", "/v1/admin/tenants/acme", None),
    ],
)
def test_client_credentials_refused_right_after_an_admin_change(
    client: FlaskClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    """Each issuance reads the client afresh: once a deletion, a secret rotation or a
    suspension returns, the next request with the old credentials is invalid_client."""
    form = {"grant_type": "client_credentials"}
    for _ in range(3):
        ok(post(client, TOKEN, form, headers=basic()))
    r = client.open(path, method=method.upper(), json=body, headers=ADMIN)
    assert r.status_code in (200, 204), r.get_data(as_text=True)
    oauth_error(post(client, TOKEN, form, headers=basic()), 401, "invalid_client")


def test_basic_credentials_are_form_urlencoded(client: FlaskClient) -> None:
    """§2.3.1: id and secret are form-urlencoded inside HTTP Basic (':' '+' ' ' 'é')."""
    r = post(client, TOKEN, {"grant_type": "client_credentials"}, headers=basic(ODD_ID, ODD_SECRET))
    assert ok(r)["access_token"]


def test_password_grant(client: FlaskClient) -> None:
    """§4.3: access token for the user with their claims, and a refresh token."""
    body = login(client, scope="read")
    assert body["scope"] == "read"
    assert body["refresh_token"].startswith("tart_")
    claims = verified_claims(client, body["access_token"])
    assert (claims["sub"], claims["dept"], claims["client_id"]) == (USERNAME, "ops", CLIENT_ID)


def test_refresh_rotation_and_reuse_detection(client: FlaskClient, clock: FixedClock) -> None:
    """§6: each refresh rotates; reusing a rotated token after the grace window is
    invalid_grant and revokes the family (RFC 9700 §4.14.2)."""
    first = login(client)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    second = ok(post(client, TOKEN, form, headers=basic()))["refresh_token"]
    assert second != first
    clock.advance(11)
    oauth_error(post(client, TOKEN, form, headers=basic()), 400, "invalid_grant")
    form["refresh_token"] = second
    oauth_error(post(client, TOKEN, form, headers=basic()), 400, "invalid_grant")


def test_refresh_retry_within_grace(client: FlaskClient, clock: FixedClock) -> None:
    """A retry within the grace window gets a new pair; the lost successor is revoked."""
    first = login(client)["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": first}
    lost = ok(post(client, TOKEN, form, headers=basic()))["refresh_token"]
    clock.advance(5)
    retried = ok(post(client, TOKEN, form, headers=basic()))["refresh_token"]
    assert retried not in (first, lost)
    lost_form = {"grant_type": "refresh_token", "refresh_token": lost}
    oauth_error(post(client, TOKEN, lost_form, headers=basic()), 400, "invalid_grant")
    form["refresh_token"] = retried
    assert ok(post(client, TOKEN, form, headers=basic()))["refresh_token"]


def test_user_revoke_kills_refresh_tokens(client: FlaskClient) -> None:
    """Log out everywhere (admin) kills the user's refresh and access tokens."""
    body = login(client)
    r = client.post(f"{TENANTS}/acme/users/{USERNAME}/revoke", headers=ADMIN)
    assert r.status_code == 200
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    oauth_error(post(client, TOKEN, form, headers=basic()), 400, "invalid_grant")
    assert client.get("/v1/verify", headers=bearer(body["access_token"])).status_code == 401


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, basic(secret="wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, basic("tac_nobody"), 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": "x"},
            {},
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials"},
            {"Authorization": "Basic !!!"},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, bearer("abc"), 401, "invalid_client"),
        ({"grant_type": "client_credentials", **POST_AUTH}, basic(), 400, "invalid_request"),
        ({}, basic(), 400, "invalid_request"),
        ({"grant_type": "authorization_code"}, basic(), 400, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "admin"}, basic(), 400, "invalid_scope"),
        ({"grant_type": "password", "username": USERNAME}, basic(), 400, "invalid_request"),
        (
            {"grant_type": "password", "username": USERNAME, "password": "no"},
            basic(),
            400,
            "invalid_grant",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "tart_x"}, basic(), 400, "invalid_grant"),
        (
            {"grant_type": "password", "username": USERNAME, "password": PASSWORD},
            basic(ODD_ID, ODD_SECRET),
            400,
            "unauthorized_client",
        ),
    ],
)
def test_token_errors(
    client: FlaskClient, form: dict[str, str], headers: dict[str, str], status: int, error: str
) -> None:
    """Every failure is its RFC 6749 §5.2 error with the right status."""
    oauth_error(post(client, TOKEN, form, headers=headers), status, error)


def test_json_body_is_unsupported_media_type(client: FlaskClient) -> None:
    """§3.2: parameters are form-encoded; a JSON body is a 415 whose ``error`` is
    invalid_request and whose ``Accept-Post`` names the form type."""
    r = client.post(TOKEN, json={"grant_type": "client_credentials"}, headers=basic())
    oauth_error(r, 415, "invalid_request")
    assert r.headers["Accept-Post"] == "application/x-www-form-urlencoded"


def test_no_body_at_all_is_invalid_request(client: FlaskClient) -> None:
    """A POST without a body (and so without a form type) lacks its parameters: a 400."""
    oauth_error(client.post(TOKEN, headers=basic()), 400, "invalid_request")


def test_repeated_parameter_is_invalid_request(client: FlaskClient) -> None:
    """§3.2: parameters must not be included more than once."""
    r = client.post(
        TOKEN,
        data="grant_type=password&grant_type=password",
        headers=basic(),
        content_type="application/x-www-form-urlencoded",
    )
    oauth_error(r, 400, "invalid_request")


def test_unknown_parameters_are_ignored(client: FlaskClient) -> None:
    """§3.2: unrecognised parameters are ignored."""
    ok(post(client, TOKEN, {"grant_type": "client_credentials", "foo": "1"}, headers=basic()))


def test_impossible_tenant_id_is_404_with_error(client: FlaskClient) -> None:
    """An id that cannot name a tenant is a 404 that still carries ``error``."""
    r = post(client, "/v1/tenants/A!/token", {"grant_type": "client_credentials"}, headers=basic())
    oauth_error(r, 404, "not_found")


# --------------------------------------------------------------------------- brute force


def _fail_password(client: FlaskClient, username: str) -> TestResponse:
    form = {"grant_type": "password", "username": username, "password": "wrong"}
    return post(client, TOKEN, form, headers=basic())


@pytest.mark.parametrize("username", [USERNAME, "nobody"])
def test_lockout_after_max_failures(client: FlaskClient, username: str) -> None:
    """After LOGIN_MAX_FAILURES (5) failures: 429 with Retry-After — for known and unknown
    usernames alike, even with the right password."""
    for _ in range(5):
        oauth_error(_fail_password(client, username), 400, "invalid_grant")
    form = {"grant_type": "password", "username": username, "password": PASSWORD}
    r = post(client, TOKEN, form, headers=basic())
    body = oauth_error(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "300"
    assert body["error_description"] == "Too many failed attempts; try again in 300 seconds."


def test_lockout_of_unknown_and_known_username_look_the_same(
    client: FlaskClient, services: Services
) -> None:
    """The 429 answers for an existing and a non-existing username are identical but for ids."""
    answers = []
    for username in (USERNAME, "nobody"):
        for _ in range(6):
            r = _fail_password(client, username)
        body = r.get_json()
        answers.append(
            (
                r.status_code,
                dict(r.headers)["Retry-After"],
                body["error"],
                body["error_description"],
                body["title"],
                body["code"],
            )
        )
        services.limiter.reset(["ip:127.0.0.1"])
    assert answers[0] == answers[1]
    assert answers[0][0] == 429


def test_client_secret_lockout(client: FlaskClient) -> None:
    """Wrong client secrets lock the client id: 429 even with the right secret."""
    for _ in range(5):
        r = post(client, TOKEN, {"grant_type": "client_credentials"}, headers=basic(secret="x"))
        oauth_error(r, 401, "invalid_client")
    r = post(client, TOKEN, {"grant_type": "client_credentials"}, headers=basic())
    oauth_error(r, 429, "rate_limited")
    assert int(r.headers["Retry-After"]) > 0


# --------------------------------------------------------------------------- revoke, introspect


def introspect(client: FlaskClient, token: str, headers: dict[str, str] | None = None) -> Any:
    """Introspect ``token`` as tac_app."""
    return ok(post(client, INTROSPECT, {"token": token}, headers=headers or basic()))


def test_introspect_access_token(client: FlaskClient, clock: FixedClock) -> None:
    """RFC 7662 §2.2: a valid access token's claims; after expiry just active false."""
    access = login(client)["access_token"]
    body = introspect(client, access)
    assert body["active"] is True
    assert body["token_type"] == "Bearer"
    assert (body["sub"], body["tid"], body["client_id"]) == (USERNAME, "acme", CLIENT_ID)
    assert (body["scope"], body["iss"], body["aud"]) == (
        "read write",
        tenant_issuer("acme"),
        "tenantauth",
    )
    assert body["exp"] == body["iat"] + 900
    assert body["jti"]
    clock.advance(900 + 30)
    assert introspect(client, access) == {"active": False}


def test_introspect_refresh_token(client: FlaskClient) -> None:
    """A live refresh token of the caller is described; another client's is inactive."""
    value = login(client)["refresh_token"]
    body = introspect(client, value)
    assert body["active"] is True
    assert (body["token_type"], body["username"], body["client_id"]) == (
        "refresh_token",
        USERNAME,
        CLIENT_ID,
    )
    assert body["scope"] == "read write"
    assert introspect(client, value, basic(ODD_ID, ODD_SECRET)) == {"active": False}


@pytest.mark.parametrize("token", ["garbage", "tart_" + "A" * 43, ""])
def test_introspect_invalid_is_inactive(client: FlaskClient, token: str) -> None:
    """Anything not valid is just ``{"active": false}``."""
    assert introspect(client, token) == {"active": False}


def test_introspect_other_tenant_token_is_inactive(client: FlaskClient) -> None:
    """A valid token of another tenant is inactive here."""
    create_tenant(client, "other")
    assert introspect(client, issue(client, "other")) == {"active": False}


def test_introspect_requires_client_authentication(client: FlaskClient) -> None:
    """RFC 7662 §2.1: the caller must authenticate."""
    oauth_error(post(client, INTROSPECT, {"token": "x"}), 401, "invalid_client")


def test_revoke_refresh_token_revokes_family(client: FlaskClient) -> None:
    """RFC 7009: revoking a refresh token answers 200 and kills it (and its grant)."""
    value = login(client)["refresh_token"]
    r = post(client, REVOKE, {"token": value, "token_type_hint": "refresh_token"}, headers=basic())
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    form = {"grant_type": "refresh_token", "refresh_token": value}
    oauth_error(post(client, TOKEN, form, headers=basic()), 400, "invalid_grant")
    assert introspect(client, value) == {"active": False}


def test_revoke_access_token(client: FlaskClient) -> None:
    """RFC 7009 for access tokens: its jti is denylisted; /v1/verify then refuses it."""
    access = login(client)["access_token"]
    assert post(client, REVOKE, {"token": access}, headers=basic()).status_code == 200
    assert client.get("/v1/verify", headers=bearer(access)).status_code == 401
    assert introspect(client, access) == {"active": False}


def test_revoke_other_clients_tokens_is_a_no_op(client: FlaskClient) -> None:
    """Another client's tokens are not revoked, yet the answer is 200."""
    body = login(client)
    odd = basic(ODD_ID, ODD_SECRET)
    for value in (body["access_token"], body["refresh_token"]):
        assert post(client, REVOKE, {"token": value}, headers=odd).status_code == 200
        assert introspect(client, value)["active"] is True


@pytest.mark.parametrize("hint", [None, "access_token", "refresh_token", "bogus"])
def test_revoke_unknown_token_is_200(client: FlaskClient, hint: str | None) -> None:
    """§2.2: invalid tokens (whatever the hint) are not an error."""
    form = {"token": "not-a-token"} | ({"token_type_hint": hint} if hint else {})
    r = post(client, REVOKE, form, headers=basic())
    assert r.status_code == 200
    assert r.get_data() == b""


def test_revoke_errors(client: FlaskClient) -> None:
    """Missing token is invalid_request; no client authentication is invalid_client."""
    oauth_error(post(client, REVOKE, {}, headers=basic()), 400, "invalid_request")
    oauth_error(post(client, REVOKE, {"token": "x"}), 401, "invalid_client")


# --------------------------------------------------------------------------- metadata


def test_metadata(client: FlaskClient) -> None:
    """RFC 8414: issuer, endpoints (built from the configured issuer), what is supported."""
    body = ok(client.get(f"{BASE}/.well-known/oauth-authorization-server"))
    issuer = f"{ISSUER}/v1/tenants/acme"
    assert body["issuer"] == issuer
    assert body["token_endpoint"] == f"{issuer}/token"
    assert body["revocation_endpoint"] == f"{issuer}/revoke"
    assert body["introspection_endpoint"] == f"{issuer}/introspect"
    assert body["grant_types_supported"] == ["client_credentials", "password", "refresh_token"]
    methods = ["client_secret_basic", "client_secret_post"]
    assert body["token_endpoint_auth_methods_supported"] == methods
    assert body["revocation_endpoint_auth_methods_supported"] == methods
    assert body["introspection_endpoint_auth_methods_supported"] == methods
    assert body["response_types_supported"] == []


def test_metadata_unknown_tenant_is_404(client: FlaskClient) -> None:
    """Unknown tenants have no metadata."""
    r = client.get("/v1/tenants/nobody/.well-known/oauth-authorization-server")
    oauth_error(r, 404, "not_found")


def test_a_refresh_token_never_passes_as_an_access_token(client: FlaskClient) -> None:
    """VERIFIER-CHECKLIST #9 (RFC 8725 §3.11): a live refresh token sent to the verifier is
    the uniform 401 — on GET (Bearer) and POST."""
    refresh = login(client)["refresh_token"]
    got = client.get("/v1/verify", headers={"Authorization": f"Bearer {refresh}"})
    assert got.status_code == 401, got.get_data(as_text=True)
    posted = client.post("/v1/verify", json={"token": refresh})
    assert posted.status_code == 401, posted.get_data(as_text=True)
