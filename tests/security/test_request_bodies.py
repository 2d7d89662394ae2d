"""Hostile request bodies on every endpoint that takes one, on SQLite and PostgreSQL + Redis.

Found by probing the running service (issue 12, "Bad input that still reaches a 500"): a
5,001-digit JSON integer made Python's int-string limit raise inside parsing (500), ``NaN`` and
``1e999`` became tokens no verifier accepts, lone surrogates broke storage (500), a JSON body
without ``Content-Type: application/json`` was read as no body at all (a rotation ignoring its
``secret``), and the POST actions without parameters ignored whatever body they were sent.
Each is a class, so each is tried on every route: JSON the parser refuses is a 400, a body that
is not JSON a 415, an unknown field a 422 — and the refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tenantauth.api.strict_json import MAX_NUMBER_LENGTH
from tests.integration.admin_support import PASSWORD, audit_items, make_key
from tests.integration.helpers import (
    ADMIN,
    TENANTS,
    assert_json,
    assert_problem,
    bearer,
    create_tenant,
    issue,
)

ACME = f"{TENANTS}/acme"
JSON = "application/json"
#: (method, path, raw JSON body with one %s slot for a value, audited?). ``{client}`` and
#: ``{key}`` are the ids made by ``made``. The slots sit where the probe found the 500s (TTL
#: fields, claims, expires_in, token, audience, an unknown field) and in every other body.
ROUTES: list[tuple[str, str, str, bool]] = [
    ("POST", TENANTS, '{"id": "beta", "name": "B", "access_token_ttl": %s}', True),
    ("PATCH", ACME, '{"max_token_ttl": %s}', True),
    ("POST", f"{ACME}/rotate", '{"unknown": %s}', True),
    ("POST", f"{ACME}/tokens", '{"sub": "u", "claims": {"n": %s}}', False),
    ("POST", f"{ACME}/tokens/revoke", '{"token": %s}', True),
    ("POST", f"{ACME}/subjects/revoke", '{"sub": %s}', True),
    ("POST", f"{ACME}/users", '{"username": "bob", "password": "x", "claims": {"n": %s}}', True),
    ("PATCH", f"{ACME}/users/alice", '{"claims": {"n": [%s]}}', True),
    ("POST", f"{ACME}/users/alice/revoke", '{"unknown": %s}', True),
    ("POST", f"{ACME}/clients", '{"name": "c", "scopes": [], "grant_types": [%s]}', True),
    ("PATCH", f"{ACME}/clients/{{client}}", '{"name": %s}', True),
    ("POST", f"{ACME}/clients/{{client}}/rotate-secret", '{"unknown": %s}', True),
    ("POST", "/v1/admin/keys", '{"name": "k", "expires_in": %s}', True),
    ("POST", "/v1/admin/keys/{key}/revoke", '{"unknown": %s}', True),
    ("POST", "/v1/verify", '{"token": %s}', False),
    ("POST", "/v1/verify", '{"token": "t", "audience": %s}', False),
    ("POST", "/v1/verify", '{"token": "t", "unknown": %s}', False),
]
ROUTE_IDS = [f"{i:02d} {method} {path}" for i, (method, path, _, _) in enumerate(ROUTES)]
#: JSON values the parser refuses, each for its own reason (api/bodies.py).
REFUSED_VALUES = {
    "int-5001-digits": "1" * 5001,
    "int-5001-digits-negative": "-" + "1" * 5001,
    "int-just-too-long": "1" * (MAX_NUMBER_LENGTH + 1),
    "fraction-5001-digits": "0." + "1" * 5000,
    "exponent-overflow": "1e999",
    "exponent-overflow-negative": "-1e999",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "lone-high-surrogate": '"\\ud800"',
    "lone-low-surrogate": '"a\\udc00b"',
    "lone-surrogate-as-name": '{"\\udbff": 1}',
    "repeated-name": '{"a": 1, "a": 2}',
}
#: Whole bodies the parser refuses: not UTF-8, or UTF-8 with a byte order mark (RFC 8259 §8.1).
REFUSED_BODIES = {
    "utf-16": '{"a": 1}'.encode("utf-16"),
    "bom": b'\xef\xbb\xbf{"a": 1}',
    "latin-1": b'{"a": "\xe9"}',
}


@pytest.fixture
def made(client: FlaskClient) -> dict[str, str]:
    """Tenant acme with user alice, one client and one admin key; their ids (and the
    client's secret)."""
    create_tenant(client, "acme")
    user = {"username": "alice", "password": PASSWORD}
    assert_json(client.post(f"{ACME}/users", json=user, headers=ADMIN), 201)
    body = {"name": "svc", "scopes": ["read"], "grant_types": ["client_credentials"]}
    made_client = assert_json(client.post(f"{ACME}/clients", json=body, headers=ADMIN), 201)
    return {
        "client": made_client["client_id"],
        "secret": made_client["client_secret"],
        "key": make_key(client)["id"],
    }


def path_of(template: str, made: dict[str, str]) -> str:
    """Return ``template`` with the ids of ``made`` filled in."""
    return template.format(**made)


def headers_for(path: str) -> dict[str, str]:
    """Return the admin token for admin paths, nothing for /v1/verify (a token in the header
    and the body would be a 400 of its own)."""
    return ADMIN if path.startswith("/v1/admin/") else {}


def last_seq(client: FlaskClient) -> int:
    """Return the sequence number of the newest audit entry."""
    return int(audit_items(client, limit=1)[0]["seq"])


def entries_after(client: FlaskClient, seq: int) -> list[dict[str, Any]]:
    """Return the audit entries newer than ``seq``, newest first."""
    return [e for e in audit_items(client) if e["seq"] > seq]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_json_the_parser_refuses_is_a_400_that_changes_nothing(
    client: FlaskClient, made: dict[str, str], route: tuple[str, str, str, bool]
) -> None:
    """Each refused value (huge or non-finite numbers, NaN, lone surrogates, repeated names)
    and each refused encoding is a 400 problem naming the reason, on every JSON route, and
    the refused admin requests are audited as 400 and change nothing."""
    method, template, body, audited = route
    before = last_seq(client)
    sent = [(body % value).encode() for value in REFUSED_VALUES.values()]
    for data in [*sent, *REFUSED_BODIES.values()]:
        path = path_of(template, made)
        r = client.open(
            path, method=method, data=data, headers=headers_for(path), content_type=JSON
        )
        problem = assert_problem(r, 400, "invalid_request")
        assert problem["detail"].startswith("Invalid JSON body: "), problem
    outcomes = [e["outcome"] for e in entries_after(client, before)]
    assert outcomes == (["400"] * len(sent + list(REFUSED_BODIES)) if audited else [])


def test_numbers_up_to_the_bound_are_accepted_exactly(
    client: FlaskClient, made: dict[str, str]
) -> None:
    """A claim of exactly MAX_NUMBER_LENGTH digits, the largest double and a denormal are
    accepted and come back unchanged from verification; one digit more is a 400."""
    longest = int("9" * MAX_NUMBER_LENGTH)
    data = '{"sub": "u", "claims": {"n": %d, "big": 1.7976931348623157e308, "tiny": 5e-324}}'
    r = client.post(f"{ACME}/tokens", data=data % longest, content_type=JSON, headers=ADMIN)
    token = assert_json(r, 201)["access_token"]
    claims = assert_json(client.post("/v1/verify", json={"token": token}), 200)["claims"]
    assert (claims["n"], claims["big"], claims["tiny"]) == (longest, 1.7976931348623157e308, 5e-324)
    r = client.post(f"{ACME}/tokens", data=data % (longest * 10), content_type=JSON, headers=ADMIN)
    assert_problem(r, 400, "invalid_request")


@pytest.mark.parametrize(
    ("content_type", "data"),
    [("text/plain", "{}"), ("application/x-www-form-urlencoded", "a=1"), (None, "{}")],
    ids=["text", "form", "no-content-type"],
)
def test_a_body_that_is_not_json_is_a_415_that_changes_nothing(
    client: FlaskClient, made: dict[str, str], content_type: str | None, data: str
) -> None:
    """On every JSON route a body of another media type (or of none) is a 415 problem whose
    Accept-Post/Accept-Patch names application/json; admin refusals are audited as 415."""
    before = last_seq(client)
    for method, template, _, _ in ROUTES:
        path = path_of(template, made)
        headers = headers_for(path)
        r = client.open(path, method=method, data=data, headers=headers, content_type=content_type)
        assert_problem(r, 415, "unsupported_media_type")
        accept = "Accept-Patch" if method == "PATCH" else "Accept-Post"
        assert r.headers[accept] == JSON
    audited = [route for route in ROUTES if route[3]]
    assert [e["outcome"] for e in entries_after(client, before)] == ["415"] * len(audited)
    assert assert_json(client.get(ACME, headers=ADMIN), 200)["key_version"] == 1


@pytest.mark.parametrize("path", ["token", "revoke", "introspect"])
def test_oauth_endpoints_answer_415_in_the_rfc_6749_shape(
    client: FlaskClient, made: dict[str, str], path: str
) -> None:
    """A JSON body on the form endpoints is a 415 that still carries RFC 6749 §5.2 ``error``
    (invalid_request) as application/json, with Accept-Post naming the form type."""
    r = client.post(f"/v1/tenants/acme/{path}", json={"token": "x", "grant_type": "password"})
    assert r.status_code == 415
    assert r.headers["Content-Type"] == JSON
    assert r.headers["Accept-Post"] == "application/x-www-form-urlencoded"
    body = r.get_json()
    assert (body["error"], body["status"]) == ("invalid_request", 415)
    assert "application/x-www-form-urlencoded" in body["error_description"]


ACTIONS_WITHOUT_PARAMETERS = [
    f"{ACME}/users/alice/revoke",
    f"{ACME}/clients/{{client}}/rotate-secret",
    "/v1/admin/keys/{key}/revoke",
]


@pytest.mark.parametrize("template", ACTIONS_WITHOUT_PARAMETERS)
def test_actions_without_parameters_refuse_bodies_like_every_route(
    client: FlaskClient, made: dict[str, str], template: str
) -> None:
    """An unknown field (422), malformed JSON (400) or a body that is not JSON (415) is refused
    and does nothing; no body and ``{}`` are accepted and do the action."""
    path = path_of(template, made)
    token = issue(client, "acme", sub="alice")
    before = snapshot(client, made)
    assert_problem(client.post(path, json={"force": True}, headers=ADMIN), 422)
    assert_problem(client.post(path, data="{", content_type=JSON, headers=ADMIN), 400)
    assert_problem(client.post(path, data="{}", content_type="text/plain", headers=ADMIN), 415)
    assert snapshot(client, made) == before
    assert client.get("/v1/verify", headers=bearer(token)).status_code == 200
    assert_json(client.post(path, headers=ADMIN), 200)
    assert_json(client.post(path, json={}, headers=ADMIN), 200)
    assert snapshot(client, made) != before


def snapshot(client: FlaskClient, made: dict[str, str]) -> tuple[Any, ...]:
    """Return what the three actions change: alice's revocation version (a new token's
    ``uv``), whether the client's first secret still works, and the key's revocation time."""
    token = issue(client, "acme", sub="alice")
    verified = assert_json(client.post("/v1/verify", json={"token": token}), 200)["claims"]
    form = {"grant_type": "client_credentials"}
    auth = (made["client"], made["secret"])
    granted = client.post("/v1/tenants/acme/token", data=form, auth=auth).status_code
    key = client.get(f"/v1/admin/keys/{made['key']}", headers=ADMIN)
    return verified.get("uv"), granted, assert_json(key, 200)["revoked_at"]
