"""GET and POST /v1/verify over HTTP, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import secrets
from typing import Any

import jwt
import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tenantauth.settings import MAX_HEADER_FIELD_BYTES, MAX_HEADER_FIELDS
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
from tests.support import FixedClock

VERIFY = "/v1/verify"
INVALID_TOKEN_CHALLENGE = 'Bearer realm="tenantauth", error="invalid_token"'


@pytest.fixture
def acme(client: FlaskClient) -> dict[str, Any]:
    """The tenant 'acme', created through the API."""
    return create_tenant(client, "acme")


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})  # type: ignore[no-any-return]


def _verify(client: FlaskClient, method: str, token: str, audience: str | None = None) -> Any:
    if method == "GET":
        query = {} if audience is None else {"audience": audience}
        return client.get(VERIFY, query_string=query, headers=bearer(token))
    body = {"token": token} if audience is None else {"token": token, "audience": audience}
    return client.post(VERIFY, json=body)


# --------------------------------------------------------------------------- GET


def test_get_accepts_a_valid_token(client: FlaskClient, acme: dict[str, Any]) -> None:
    """GET answers 200 {active, claims} with X-Tenant-Id, X-Subject, X-Scope and no-store."""
    token = issue(client, "acme", sub="user-42", scope="orders:read orders:write")
    r = client.get(VERIFY, headers=bearer(token))
    assert assert_json(r, 200) == {"active": True, "claims": _claims(token)}
    assert r.headers["X-Tenant-Id"] == "acme"
    assert r.headers["X-Subject"] == "user-42"
    assert r.headers["X-Scope"] == "orders:read orders:write"
    assert r.headers["Cache-Control"] == "no-store"


def test_get_omits_x_scope_without_scope(client: FlaskClient, acme: dict[str, Any]) -> None:
    """A token without `scope` verifies without an X-Scope header."""
    token = issue(client, "acme", sub="svc-1")
    r = client.get(VERIFY, headers=bearer(token))
    assert "scope" not in assert_json(r, 200)["claims"]
    assert "X-Scope" not in r.headers
    assert (r.headers["X-Tenant-Id"], r.headers["X-Subject"]) == ("acme", "svc-1")


def test_get_head_answers_like_get(client: FlaskClient, acme: dict[str, Any]) -> None:
    """HEAD /v1/verify gives the same status and identity headers as GET, without a body."""
    token = issue(client, "acme")
    r = client.head(VERIFY, headers=bearer(token))
    assert (r.status_code, r.headers["X-Tenant-Id"], r.get_data()) == (200, "acme", b"")
    assert client.head(VERIFY, headers=bearer(token + "x")).status_code == 401


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_audience_must_be_one_of_the_tokens(
    client: FlaskClient, acme: dict[str, Any], method: str
) -> None:
    """A named audience in the token's `aud` list is 200; any other audience is 401."""
    token = issue(client, "acme", aud=["orders", "billing"])
    for audience in ("orders", "billing"):
        assert assert_json(_verify(client, method, token, audience), 200)["active"] is True
    for audience in ("shipping", "order", "ORDERS", "orders billing"):
        assert_problem(_verify(client, method, token, audience), 401, "invalid_token")


def test_get_unknown_query_parameter_is_unprocessable(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """GET /v1/verify with a query parameter other than `audience` is a 422 problem."""
    token = issue(client, "acme")
    for query in ({"aud": "orders"}, {"audience": "tenantauth", "debug": "1"}):
        r = client.get(VERIFY, query_string=query, headers=bearer(token))
        assert_problem(r, 422, "invalid_request")


def test_get_without_authorization_is_the_uniform_401(client: FlaskClient) -> None:
    """GET without an Authorization header is the uniform 401 body, with a challenge that
    carries no error code (RFC 6750 §3.1)."""
    r = client.get(VERIFY)
    reference = client.get(VERIFY, headers=bearer("a.b.c"))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="tenantauth"'
    assert _body_without_request_id(r) == _body_without_request_id(reference)


@pytest.mark.parametrize(
    "token",
    ["abc", "a.b.c", "a.b.c.d.e", "e30.e30." + "A" * 43, "x" * 5000],
    ids=["word", "three-dots", "five-parts", "empty-json", "oversized"],
)
def test_get_rejects_a_bad_token_with_invalid_token(client: FlaskClient, token: str) -> None:
    """GET with a token that is not a valid JWT is 401 with error="invalid_token"."""
    r = client.get(VERIFY, headers=bearer(token))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwdw==",
        "a.b.c",
        'Bearer {"protected": "x", "signature": "y"}',  # the JWS JSON serialization
        "Bearer a,b",  # a comma: two credentials (RFC 9110 §5.3)
        "Bearer a.b.c, Bearer d.e.f",
        "Bearer\ta.b.c",
        'Bearer "a.b.c"',
    ],
    ids=["bare", "empty", "basic", "no-scheme", "json", "comma", "two", "tab", "quoted"],
)
def test_get_with_unreadable_credentials_is_the_uniform_401(
    client: FlaskClient, authorization: str
) -> None:
    """An Authorization header that is not exactly one Bearer b64token is the uniform 401
    with error="invalid_token" (never a 400, which nginx auth_request turns into a 500)."""
    r = client.get(VERIFY, headers={"Authorization": authorization})
    reference = client.get(VERIFY, headers=bearer("a.b.c"))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    assert _body_without_request_id(r) == _body_without_request_id(reference)


def _body_without_request_id(response: TestResponse) -> dict[str, Any]:
    body: dict[str, Any] = response.get_json(force=True)
    del body["request_id"]
    return body


def test_get_rejects_a_forged_token_with_invalid_token(
    client: FlaskClient, acme: dict[str, Any], clock: FixedClock
) -> None:
    """A well-formed token signed with another key is 401 with error="invalid_token"."""
    forged = sign(secrets.token_bytes(32), claims_for("acme", clock.now()), "acme")
    r = client.get(VERIFY, headers=bearer(forged))
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_get_with_two_authorization_headers_is_the_uniform_401(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """Two Authorization headers on GET /v1/verify are the uniform 401, even if both are
    valid: which one would be meant is ambiguous (RFC 6750 §2)."""
    token = issue(client, "acme")
    r = client.get(VERIFY, headers=[("Authorization", f"Bearer {token}")] * 2)
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_get_over_the_header_limits_is_the_uniform_401(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """GET /v1/verify with more header fields than the limit, or a header line over it, is
    the uniform 401 (a 431 would be a 500 behind nginx); POST keeps the 431."""
    token = issue(client, "acme")
    many = [(f"X-Filler-{i}", "x") for i in range(MAX_HEADER_FIELDS)]
    huge = [("Authorization", "Bearer " + "A" * MAX_HEADER_FIELD_BYTES)]
    for headers in ([*many, ("Authorization", f"Bearer {token}")], huge):
        r = client.get(VERIFY, headers=headers)
        assert_problem(r, 401, "invalid_token")
        assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE
    r = client.post(VERIFY, json={"token": token}, headers=many)
    assert_problem(r, 431)


# --------------------------------------------------------------------------- POST


def test_post_accepts_a_valid_token(client: FlaskClient, acme: dict[str, Any]) -> None:
    """POST {token} answers 200 {active: true, claims} with no-store."""
    token = issue(client, "acme", scope="read", claims={"role": "admin"})
    r = client.post(VERIFY, json={"token": token})
    body = assert_json(r, 200)
    assert body == {"active": True, "claims": _claims(token)}
    assert body["claims"]["role"] == "admin"
    assert r.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "token",
    ["abc", "a.b.c", "x" * 4096, "x" * 4097, "x" * 60_000],
    ids=["word", "dots", "4096", "4097", "60000"],
)
def test_post_rejects_a_bad_token(client: FlaskClient, token: str) -> None:
    """POST with a bad token is a 401 invalid_token problem with the challenge header."""
    r = client.post(VERIFY, json={"token": token})
    assert_problem(r, 401, "invalid_token")
    assert r.headers["WWW-Authenticate"] == INVALID_TOKEN_CHALLENGE


def test_post_with_token_in_header_and_body_is_a_bad_request(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """Sending the token both in the header and the body is a 400 problem (RFC 6750 §2)."""
    token = issue(client, "acme")
    r = client.post(VERIFY, json={"token": token}, headers=bearer(token))
    assert_problem(r, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"audience": "orders"},
        {"token": None},
        {"token": 42},
        {"token": ""},
        {"token": "a.b.c", "extra": True},
        {"token": "a.b.c", "aud": "orders"},
        ["a.b.c"],
    ],
    ids=str,
)
def test_post_invalid_body_is_unprocessable(client: FlaskClient, body: Any) -> None:
    """A missing or mistyped token, or an unknown field, is a 422 problem."""
    assert_problem(client.post(VERIFY, json=body), 422, "invalid_request")


def test_post_malformed_json_is_a_bad_request(client: FlaskClient) -> None:
    """A POST body that is not JSON is a 400 problem."""
    r = client.post(VERIFY, data='{"token": ', content_type="application/json")
    assert_problem(r, 400, "invalid_request")


# --------------------------------------------------------------------------- uniformity


def _strip(response: TestResponse) -> tuple[dict[str, Any], str | None]:
    body = assert_problem(response, 401, "invalid_token")
    del body["request_id"]
    return body, response.headers.get("WWW-Authenticate")


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_token_failure_looks_the_same(
    client: FlaskClient, clock: FixedClock, method: str
) -> None:
    """Unknown tenant, bad signature, expired, wrong audience, suspended, malformed and
    rotated-away tokens all get the same 401 body and challenge (RFC 8725; no oracle)."""
    for tenant_id in ("good", "paused", "rotated"):
        create_tenant(client, tenant_id)
    good = issue(client, "good")
    paused = issue(client, "paused")
    rotated = issue(client, "rotated")
    for tenant_id, token in (("good", good), ("paused", paused), ("rotated", rotated)):
        assert verify_status(client, token) == 200, tenant_id
    client.patch(f"{TENANTS}/paused", json={"status": "suspended"}, headers=ADMIN)
    client.post(f"{TENANTS}/rotated/rotate", headers=ADMIN)
    now = clock.now()
    failures = {
        "unknown tenant": _verify(
            client, method, sign(secrets.token_bytes(32), claims_for("ghost", now), "ghost")
        ),
        "bad signature": _verify(
            client, method, sign(secrets.token_bytes(32), claims_for("good", now), "good")
        ),
        "wrong audience": _verify(client, method, good, audience="elsewhere"),
        "suspended tenant": _verify(client, method, paused),
        "malformed token": _verify(client, method, "not-a-jwt"),
        "rotated away": _verify(client, method, rotated),
    }
    clock.advance(900 + 61)  # past exp plus the largest allowed leeway
    failures["expired"] = _verify(client, method, good)
    shapes = {reason: _strip(r) for reason, r in failures.items()}
    reference = shapes.pop("expired")
    assert reference[0]["instance"] == VERIFY
    assert reference[1] == INVALID_TOKEN_CHALLENGE
    for reason, shape in shapes.items():
        assert shape == reference, reason


# --------------------------------------------------------------------------- rotation


def test_rotation_revokes_old_tokens_and_new_ones_work_at_once(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """After rotate returns the old token is 401 on GET and POST; a new one is 200 at once."""
    old = issue(client, "acme")
    for method in ("GET", "POST"):  # also warms the cache with the old key
        assert _verify(client, method, old).status_code == 200
    assert client.post(f"{TENANTS}/acme/rotate", headers=ADMIN).status_code == 200
    for method in ("GET", "POST"):
        assert_problem(_verify(client, method, old), 401, "invalid_token")
    new = issue(client, "acme")
    for method in ("GET", "POST"):
        assert _verify(client, method, new).status_code == 200
    assert _verify(client, "GET", old).status_code == 401


def test_new_tenant_verifies_at_once_after_a_negative_lookup(
    client: FlaskClient, clock: FixedClock
) -> None:
    """A token for an unknown id is 401; once that id is created, its tokens verify at once."""
    key, text = new_secret()
    token = sign(key, claims_for("late", clock.now()), "late")
    assert verify_status(client, token) == 401  # negative-cached where there is a cache
    create_tenant(client, "late", secret=text)
    assert verify_status(client, token) == 200


def test_tokens_do_not_cross_tenants(client: FlaskClient, clock: FixedClock) -> None:
    """A token signed with tenant A's secret but naming tenant B is rejected."""
    key_a, text_a = new_secret()
    create_tenant(client, "alpha", secret=text_a)
    create_tenant(client, "beta")
    as_beta = sign(key_a, claims_for("beta", clock.now()), "beta")
    tid_mismatch = sign(key_a, claims_for("beta", clock.now()), "alpha")
    assert verify_status(client, as_beta) == 401
    assert verify_status(client, tid_mismatch) == 401
    assert verify_status(client, sign(key_a, claims_for("alpha", clock.now()), "alpha")) == 200


# --------------------------------------------------------------------------- GET /v1/verify/<path>


@pytest.mark.parametrize(
    "path",
    ["/v1/verify/api/orders", "/v1/verify/a/b/c?audience=nope&access_token=x&debug=1"],
    ids=["path", "path-and-query"],
)
def test_forwarded_path_form_verifies_and_ignores_the_protected_requests_path_and_query(
    client: FlaskClient, acme: dict[str, Any], path: str
) -> None:
    """GET /v1/verify/<path> (Envoy ext_authz appends the protected request's path and query)
    answers like GET /v1/verify; the appended query is not ours and changes nothing."""
    token = issue(client, "acme", sub="user-7", scope="read")
    r = client.get(path, headers=bearer(token))
    assert assert_json(r, 200) == {"active": True, "claims": _claims(token)}
    assert (r.headers["X-Tenant-Id"], r.headers["X-Subject"], r.headers["X-Scope"]) == (
        "acme",
        "user-7",
        "read",
    )


def test_forwarded_path_form_rejects_like_the_gateway_endpoint(
    client: FlaskClient, acme: dict[str, Any]
) -> None:
    """GET /v1/verify/<path> gives the uniform 401 for a missing, unreadable or bad token and
    for too many header fields, byte for byte the body of GET /v1/verify."""
    reference = client.get(VERIFY, headers=bearer("a.b.c"))
    many = [(f"X-Filler-{i}", "x") for i in range(MAX_HEADER_FIELDS)]
    cases = [[], [("Authorization", "Bearer a,b")], list(bearer("a.b.c").items()), many]
    for headers in cases:
        r = client.get("/v1/verify/api/x", headers=headers)
        assert_problem(r, 401, "invalid_token")
        assert _body_without_request_id(r) | {"instance": VERIFY} == _body_without_request_id(
            reference
        )
